"""Accounts tables: users, OTP codes, refresh tokens and revoked token families."""
from __future__ import annotations

import peewee as pw

from ..db import BaseModel, utcnow


class User(BaseModel):
    id = pw.BigAutoField()
    phone = pw.CharField(max_length=20, unique=True, null=True)  # E.164, e.g. +84912345678
    name = pw.CharField(max_length=200)
    email = pw.CharField(max_length=200, null=True)
    password_hash = pw.CharField(max_length=200, null=True)
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)  # OneRoster users.sourcedId
    is_active = pw.BooleanField(default=True)
    created_at = pw.DateTimeField(default=utcnow)


class OtpCode(BaseModel):
    id = pw.BigAutoField()
    phone = pw.CharField(max_length=20, index=True)
    code_hash = pw.CharField(max_length=200)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    attempts = pw.IntegerField(default=0)
    consumed_at = pw.DateTimeField(null=True)
    locked = pw.BooleanField(default=False)


class RefreshToken(BaseModel):
    """Rotating refresh tokens; every login starts a family, reuse of a used one revokes it."""

    id = pw.BigAutoField()
    token_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    family = pw.CharField(max_length=36, index=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


class RevokedFamily(BaseModel):
    """Token families ended by logout or refresh-token reuse: their access tokens stop at once."""

    family = pw.CharField(max_length=36, primary_key=True)
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    revoked_at = pw.DateTimeField(default=utcnow)
    reason = pw.CharField(max_length=20)


MODELS = [User, OtpCode, RefreshToken, RevokedFamily]
