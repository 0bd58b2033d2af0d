"""WeChat campaigns (公众号群发): submitting their mass-send jobs and recording WeChat's finish events."""
