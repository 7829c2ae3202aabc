from .rfcn import RFCN

__all__ = ['RFCN']
