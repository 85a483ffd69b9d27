"""Lists that follow the cursor: each page is fetched only when the items
before it have been consumed."""

from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable, Generic, Iterator, TypeVar

from .types import Page

T = TypeVar("T")


class Paginator(Generic[T]):
    """Every item of a list, newest first, across pages::

        for token in client.tokens.list(status="active"):
            ...

    Nothing is fetched until iteration starts. `pages()` gives whole pages
    (with `has_more` and `next_cursor`), `first_page()` just the first.
    """

    def __init__(self, fetch: Callable[[str | None], Page[T]], starting_after: str | None = None) -> None:
        self._fetch = fetch
        self._start = starting_after

    def first_page(self) -> Page[T]:
        return self._fetch(self._start)

    def pages(self) -> Iterator[Page[T]]:
        cursor = self._start
        while True:
            page = self._fetch(cursor)
            yield page
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data


class AsyncPaginator(Generic[T]):
    """Every item of a list, newest first, across pages::

        async for token in client.tokens.list(status="active"):
            ...

    Nothing is fetched until iteration starts. `pages()` gives whole pages,
    ``await first_page()`` just the first.
    """

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[Page[T]]], starting_after: str | None = None
    ) -> None:
        self._fetch = fetch
        self._start = starting_after

    async def first_page(self) -> Page[T]:
        return await self._fetch(self._start)

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor = self._start
        while True:
            page = await self._fetch(cursor)
            yield page
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item
