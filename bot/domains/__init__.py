"""Domains: complaints and case progress, peers that never import each other.  They use the core, the
adapters, the SMS gateway and the knowledge base; never the gateway app above them."""
