import type { Page } from "./types.js";

/**
 * A list that follows the cursor. Iterate it for every item, fetching each
 * page only when the items before it are used up:
 *
 * ```ts
 * for await (const token of tooken.tokens.list({ status: "active" })) { … }
 * ```
 *
 * or await it for the first page alone (`{ data, has_more, next_cursor }`).
 */
export class PageIterator<T> implements AsyncIterable<T>, PromiseLike<Page<T>> {
  readonly #fetchPage: (cursor: string | undefined) => Promise<Page<T>>;
  readonly #start: string | undefined;
  #first: Promise<Page<T>> | undefined;

  /** `fetchPage(cursor)` gets the page after `cursor` (the first page for `start`). */
  constructor(fetchPage: (cursor: string | undefined) => Promise<Page<T>>, start?: string) {
    this.#fetchPage = fetchPage;
    this.#start = start;
  }

  /** The first page. */
  firstPage(): Promise<Page<T>> {
    this.#first ??= this.#fetchPage(this.#start);
    return this.#first;
  }

  then<R1 = Page<T>, R2 = never>(
    onFulfilled?: ((page: Page<T>) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.firstPage().then(onFulfilled, onRejected);
  }

  /** Every page, in order. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let page = await this.firstPage();
    for (;;) {
      yield page;
      if (!page.has_more || page.next_cursor === null || page.next_cursor === undefined) return;
      page = await this.#fetchPage(page.next_cursor);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) {
      yield* page.data;
    }
  }

  /** Every item in an array (at most `max`, default all). */
  async toArray(max = Infinity): Promise<T[]> {
    const out: T[] = [];
    if (max <= 0) return out;
    for await (const item of this) {
      out.push(item);
      if (out.length >= max) break;
    }
    return out;
  }
}
