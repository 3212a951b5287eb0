"""The normal forms duplicate detection uses, stored beside every customer's raw values: the
kit's (`servicekit.normalize`), which the opportunities service matches leads with too."""

from servicekit.normalize import normalize_email, normalize_name, normalize_phone, normalize_region

__all__ = ["normalize_email", "normalize_name", "normalize_phone", "normalize_region"]
