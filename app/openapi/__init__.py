"""The pydantic models of every body and the OpenAPI document generated from them."""
