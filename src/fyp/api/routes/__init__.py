"""HTTP routes, thin: each validates, calls one service, and shapes the answer."""
