"""The signed-in user's own account: their roles and their API tokens — create (shown once), list,
revoke — on a page and through the API, both calling core.tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import tokens
from .api import Closed, Whole, validated
from .exceptions import ApplicationError
from .roles import actor_of, user_roles


class TokenCreateInput(Closed):
    days = Whole(
        required=False,
        min_value=1,
        max_value=tokens.MAX_DAYS,
        help_text="lifetime in days (default: API_TOKEN_TTL_DAYS)",
    )


class TokenOutput(serializers.Serializer):
    key = serializers.CharField(source="token_key", help_text="the token's first characters")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)


class NewTokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="shown this once; only its hash is kept")
    key = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)


class TokenListOutput(serializers.Serializer):
    tokens = TokenOutput(many=True)


class TokensApi(APIView):
    @extend_schema(summary="My API tokens (not the tokens themselves: they are kept only as hashes)",
                   responses=TokenListOutput)  # fmt: skip
    def get(self, request: Request) -> Response:
        return Response(TokenListOutput({"tokens": tokens.token_list(user=actor_of(request))}).data)

    @extend_schema(summary="Create an API token; the answer is the only time it is shown",
                   request={"application/json": TokenCreateInput}, responses={201: NewTokenOutput})  # fmt: skip
    def post(self, request: Request) -> Response:
        made = tokens.token_create(user=actor_of(request), **validated(TokenCreateInput, request.data))
        return Response(NewTokenOutput(made).data, status=201)


class TokenApi(APIView):
    @extend_schema(summary="Revoke one of my API tokens", responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        tokens.token_revoke(user=actor_of(request), key=key)
        return Response(status=204)


NEW_TOKEN = "account-new-token"  # the session key that carries a new token to the one page that shows it


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """GET: roles and tokens, and a token just made, shown this once. POST: make a token, then redirect
    (a reload never makes another); the token travels in the server-side session, never in a cookie."""
    user = actor_of(request)
    context: dict[str, Any] = {"roles": sorted(user_roles(user)), "new_token": None, "error": None}
    status = 200
    if request.method == "POST":
        try:
            made = tokens.token_create(user=user, **validated(TokenCreateInput, request.POST))
        except ApplicationError as exc:
            context["error"], status = exc, exc.http_status
        else:
            request.session[NEW_TOKEN] = NewTokenOutput(made).data
            return redirect("account")
    else:
        context["new_token"] = request.session.pop(NEW_TOKEN, None)
    context["tokens"] = tokens.token_list(user=user)
    response = render(request, "account.html", context, status=status)
    response["Cache-Control"] = "no-store"  # a page that may show a token is never cached
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, key: str) -> HttpResponse:
    tokens.token_revoke(user=actor_of(request), key=key)
    messages.success(request, f"Token {key}… revoked.")
    return redirect("account")


page_urls = [
    path("account/", account, name="account"),
    path("account/tokens/<str:key>/revoke", token_revoke, name="token-revoke"),
]
api_urls = [
    path("tokens", TokensApi.as_view(), name="tokens"),
    path("tokens/<str:key>", TokenApi.as_view(), name="token"),
]
