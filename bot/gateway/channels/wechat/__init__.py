"""WeChat Official Account channel: the only package that knows WeChat's HTTP API."""
