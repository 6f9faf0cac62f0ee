"""The version of sgnsep, in a module of its own so that any module can read it without importing the
package's __init__ (which would tie every module into one import cycle)."""

__version__ = "0.2.0"
