"""An event loop that keeps a few statistics, for diagnosing slow suites."""

import asyncio


class InstrumentedEventLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.callbacks_scheduled = 0
        self.tasks_created = 0

    def call_soon(self, callback, *args, context=None):
        self.callbacks_scheduled += 1
        return super().call_soon(callback, *args, context=context)

    def create_task(self, coro, **kwargs):
        self.tasks_created += 1
        return super().create_task(coro, **kwargs)


class InstrumentedEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return InstrumentedEventLoop()
