"""Commerce: a customer's contacts, orders and the payments received against them."""
