"""WeChat's server API: the async client, the access-token service, template-message rules and a fake of
WeChat's servers for demo mode and tests."""
