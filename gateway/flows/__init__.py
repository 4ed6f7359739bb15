"""What the gateway does with one classified message, one module per kind of destination."""
