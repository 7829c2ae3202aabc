from .deconv2x import Deconv2x

__all__ = ['Deconv2x']
