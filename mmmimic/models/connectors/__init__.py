from .connectors import BaseConnector, Conv1x1Connector, Deconv2xConnector, IdentityConnector

__all__ = ['BaseConnector', 'Conv1x1Connector', 'Deconv2xConnector', 'IdentityConnector']
