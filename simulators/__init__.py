"""Local HTTP simulators of the providers' APIs, with fault injection, for tests, demos and
benchmarks. Each speaks its provider's API closely enough for the official SDK."""
