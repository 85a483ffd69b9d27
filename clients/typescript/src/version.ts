/** This package's version; sent in the `User-Agent` of every request. */
export const VERSION = "0.1.0";
