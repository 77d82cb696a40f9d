"""Receivers: where spans enter the collector (OTLP over gRPC and HTTP)."""
