"""One adapter per conversational AI provider, sharing one relay core."""
