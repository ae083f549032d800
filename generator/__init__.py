"""btfhub: a declarative hub of kernel BTF files built from debug packages."""

__version__ = "0.1.0"
