"""Adapters to external systems we do not run (WeChat's server API, the e-approval backend), each with
a typed interface and a faithful fake beside it."""
