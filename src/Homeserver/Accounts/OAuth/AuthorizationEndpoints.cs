using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Spec: "Authorisation code flow" (RFC 6749 §4.1 with PKCE, RFC 7636): the authorisation request is checked and kept,
/// the signed-in user is asked for consent, and the browser goes back to the client with a code or an error. An
/// unknown client or an unregistered redirect URI gets an error page: such a redirect could not be trusted.
/// </summary>
public sealed class AuthorizationEndpoints(Database db, OAuthClientStore clients, OAuthGrantStore grants, OAuthBrowserSessions browser,
    HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapPage("GET", OAuthPaths.Authorize, AuthorizeAsync);

    private async Task AuthorizeAsync(HttpContext context)
    {
        var query = OAuthRoutes.QueryParameters(context);
        var clientId = query.Optional("client_id") ?? throw OAuthException.InvalidRequest("The request names no client (client_id).");
        var client = await db.ReadAsync(s => clients.GetAsync(s, clientId), context.RequestAborted)
            ?? throw OAuthException.InvalidRequest("The client is not registered with this server.");
        var redirectUri = query.Optional("redirect_uri");
        if (redirectUri is null || !client.IsRegisteredRedirect(redirectUri))
            throw OAuthException.InvalidRequest("The redirect URI is not one the client registered.");

        var responseMode = query.Optional("response_mode") ?? "query";
        var state = query.Optional("state");
        var back = new ClientRedirect(redirectUri, responseMode is "fragment" ? "fragment" : "query", state);
        if (responseMode is not ("query" or "fragment"))
        {
            HtmlPages.Redirect(context, back.Error("invalid_request", "response_mode must be query or fragment."));
            return;
        }
        if (Check(query, client) is var (error, description))
        {
            HtmlPages.Redirect(context, back.Error(error, description));
            return;
        }
        Scope scope;
        try
        {
            scope = Scope.Parse(query.Optional("scope"));
        }
        catch (OAuthException e)
        {
            HtmlPages.Redirect(context, back.Error(e.Error, e.Message));
            return;
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var grant = new OAuthGrantRow
        {
            GrantId = Secrets.NewSessionId(), Kind = OAuthGrantRow.Code, ClientId = client.ClientId, Scope = scope.Text, DeviceId = scope.DeviceId,
            RedirectUri = redirectUri, ResponseMode = back.Mode, State = state, Nonce = query.Optional("nonce"),
            CodeChallenge = query["code_challenge"], Status = OAuthGrantRow.Pending, CreatedTs = now,
            ExpiresTs = now + config.Oauth.AuthorizationCodeLifetimeMs,
        };
        await db.WriteAsync(s => grants.InsertAsync(s, grant), context.RequestAborted);
        var consentUrl = ConsentPage.Url(grant.GrantId);
        var prompt = query.Optional("prompt");
        if (prompt == "none" && await browser.CurrentAsync(context) is null)
            HtmlPages.Redirect(context, back.Error("login_required", "The user is not signed in."));
        else if (prompt == "create" && SignUpPage.IsOpen(config))
            HtmlPages.Redirect(context, SignUpPage.Url(consentUrl));
        else
            HtmlPages.Redirect(context, consentUrl);
    }

    /// <summary>The refusals sent back to the client (RFC 6749 §4.1.2.1), once its redirect URI is known to be its own.</summary>
    private static (string Error, string Description)? Check(IReadOnlyDictionary<string, string> query, OAuthClient client)
    {
        if (query.Optional("response_type") != "code")
            return ("unsupported_response_type", "response_type must be code.");
        if (!client.MayUse(OAuthClient.AuthorizationCodeGrant))
            return ("unauthorized_client", "The client did not register for the authorization_code grant.");
        if (query.Optional("code_challenge") is not { } challenge)
            return ("invalid_request", "PKCE is required: code_challenge is missing.");
        if (query.Optional("code_challenge_method") != "S256")
            return ("invalid_request", "code_challenge_method must be S256.");
        if (challenge.Length != 43 || !challenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            return ("invalid_request", "code_challenge must be a base64url SHA-256 hash.");
        return null;
    }
}

/// <summary>Where a client's redirect URI is sent its answer: in the query or in the fragment, with the request's state.</summary>
public sealed record ClientRedirect(string RedirectUri, string Mode, string? State)
{
    public string Error(string error, string description) => With(("error", error), ("error_description", description));

    public string With(params (string Name, string Value)[] parameters)
    {
        var all = State is null ? parameters : [.. parameters, ("state", State)];
        var encoded = string.Join('&', all.Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value)}"));
        return Mode == "fragment" ? $"{RedirectUri}#{encoded}" : $"{RedirectUri}{(RedirectUri.Contains('?') ? '&' : '?')}{encoded}";
    }
}
