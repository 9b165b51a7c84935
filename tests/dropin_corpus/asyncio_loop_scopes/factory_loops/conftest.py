from instrumented import InstrumentedEventLoop


def pytest_asyncio_loop_factories(config, item):
    return {"instrumented": InstrumentedEventLoop}
