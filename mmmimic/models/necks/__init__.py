from .deconv2x_neck import Deconv2xNeck

__all__ = ['Deconv2xNeck']
