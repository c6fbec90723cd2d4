import type { ProxyHeader } from './header.js'

/**
 * What {@link parse} says about the bytes received so far: the header is not complete yet, or it is and
 * `consumed` bytes of the input were the header (the rest belongs to the proxied stream).
 */
export type ParseResult =
  | { readonly state: 'need-more' }
  | { readonly state: 'done', readonly header: ProxyHeader, readonly consumed: number }

/** The one need-more result: it carries nothing, so it is shared. */
export const NEED_MORE: ParseResult = Object.freeze({ state: 'need-more' })
