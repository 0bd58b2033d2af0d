"""Domains: complaints, case progress and staff identity, peers that never import each other.  They use
the core, the adapters, the SMS gateway and the knowledge base; never the gateway app above them."""
