using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// Single sign-on through an upstream OpenID Connect provider: the browser is sent to the provider with a fresh state,
/// nonce and PKCE verifier (kept server-side for ten minutes, and the state also in a cookie so that only the browser
/// that started a sign-in can finish it), comes back to Synapse's callback path (what operators register at their
/// provider), and the claims it proves are mapped to an account as Synapse's <c>oidc_providers</c> say.
/// </summary>
public sealed class OidcSignIn(
    OidcProviders providers, SsoSessionStore sessions, SsoCompletion completion, ExternalAccounts externalAccounts, ExternalIdStore externalIds,
    UserStore users, Database db, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public const string CallbackPath = "/_synapse/client/oidc/callback";
    private const string CookieName = "oidc_session";
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(10);
    /// <summary>How many numbered variants of a taken localpart are tried before giving up (Synapse's limit).</summary>
    private const int LocalpartAttempts = 1000;

    private string RedirectUri => config.EffectivePublicBaseurl.TrimEnd('/') + CallbackPath;

    public void Map(IEndpointRouteBuilder app) => app.MapGet(CallbackPath, CallbackAsync);

    /// <summary>Starts a sign-in at the provider and returns where to send the browser.</summary>
    public async Task<string> StartAsync(HttpContext context, OidcProvider provider, SsoTarget target)
    {
        var ct = context.RequestAborted;
        var state = Secrets.NewToken("");
        var nonce = Secrets.NewToken("");
        var verifier = await provider.UsesPkceAsync(ct) ? Secrets.NewToken("") : null;
        var now = clock.GetUtcNow();
        await db.WriteAsync(s => sessions.InsertAsync(s, new SsoSessionRow
        {
            StateHash = Secrets.Hash(state), IdpId = provider.IdpId, Nonce = nonce, CodeVerifier = verifier,
            ClientRedirectUrl = target.ClientRedirectUrl, UiaSession = target.UiaSession, ReturnTo = target.ReturnTo,
            ExpiresTs = (now + SessionLifetime).ToUnixTimeMilliseconds(),
        }, now.ToUnixTimeMilliseconds()), ct);
        context.Response.Cookies.Append(CookieName, state, new CookieOptions
        {
            HttpOnly = true,
            // Lax: the provider sends the browser back with a top-level GET, which carries it.
            SameSite = SameSiteMode.Lax,
            Secure = config.EffectivePublicBaseurl.StartsWith("https:", StringComparison.Ordinal),
            Path = CallbackPath,
            MaxAge = SessionLifetime,
        });
        return await provider.AuthorizationUrlAsync(RedirectUri, state, nonce, verifier, ct);
    }

    private async Task CallbackAsync(HttpContext context)
    {
        try
        {
            await CompleteAsync(context);
        }
        catch (MatrixException e)
        {
            await HtmlResponse.WriteAsync(context, SsoPages.Failed(e.Message), e.Status);
        }
    }

    private async Task CompleteAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var state = context.Query("state");
        if (state.Length == 0)
            throw new MatrixException(400, "M_MISSING_PARAM", "The sign-in provider sent the browser back without its state.");
        // The state must be this browser's own: someone else's link cannot sign this browser in to their account.
        if (context.Request.Cookies[CookieName] != state)
            throw new MatrixException(400, "M_UNKNOWN", "This sign-in was not started in this browser, or it has expired. Start again from your client.");
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var session = await db.WriteAsync(s => sessions.TakeAsync(s, Secrets.Hash(state), now), ct)
            ?? throw new MatrixException(400, "M_UNKNOWN", "This sign-in has expired or was already used. Start again from your client.");
        context.Response.Cookies.Delete(CookieName, new CookieOptions { Path = CallbackPath });
        var provider = providers.Find(session.IdpId)
            ?? throw new MatrixException(400, "M_UNKNOWN", "The sign-in provider of this sign-in is no longer configured.");
        if (context.Query("error") is { Length: > 0 } error)
            throw new MatrixException(401, "M_UNAUTHORIZED",
                $"{provider.Config.IdpName} did not sign you in: {error} {context.Query("error_description")}".TrimEnd());
        var code = context.Query("code");
        if (code.Length == 0)
            throw new MatrixException(400, "M_MISSING_PARAM", "The sign-in provider sent the browser back without a code.");

        var claims = await provider.ClaimsForCodeAsync(code, RedirectUri, session.CodeVerifier, session.Nonce, ct);
        if (UnmetRequirement(provider.Config, claims) is { } unmet)
            throw new MatrixException(403, "M_FORBIDDEN", $"Your {provider.Config.IdpName} account lacks what this server requires ({unmet}).");
        var userId = await AccountOfAsync(provider, claims, ct);
        await completion.FinishAsync(context, session.Target, userId);
    }

    /// <summary>The first attribute requirement the claims miss, or null.</summary>
    private static string? UnmetRequirement(OidcProviderConfig provider, JsonObject claims)
    {
        foreach (var requirement in provider.AttributeRequirements)
        {
            var values = claims[requirement.Attribute] switch
            {
                JsonArray list => list.Select(item => item?.ToString()).ToList(),
                { } single => [single.ToString()],
                null => [],
            };
            var accepted = requirement.OneOf ?? [requirement.Value!];
            if (!values.Any(value => value is not null && accepted.Contains(value)))
                return requirement.Attribute;
        }
        return null;
    }

    /// <summary>
    /// The account the provider's subject is linked to; else, at a first sign-in, the mapped localpart (a number
    /// appended while it is taken): an existing account with it when <c>allow_existing_users</c>, a new one when
    /// <c>enable_registration</c>.
    /// </summary>
    private async Task<string> AccountOfAsync(OidcProvider provider, JsonObject claims, CancellationToken ct)
    {
        var subjectClaim = provider.Config.UserMappingProvider.Config.SubjectClaim;
        var subject = claims[subjectClaim] is JsonValue value ? value.ToString() : "";
        if (subject.Length == 0)
            throw new MatrixException(502, "M_UNKNOWN", $"The sign-in provider named no '{subjectClaim}' for you.");
        if (await db.ReadAsync(s => externalIds.FindUserAsync(s, provider.IdpId, subject), ct) is { } linked)
        {
            var account = await db.ReadAsync(s => users.GetAsync(s, linked), ct);
            if (account is { Deactivated: not 0 })
                throw new MatrixException(403, "M_USER_DEACTIVATED", "This account has been deactivated.");
            return linked;
        }

        var baseLocalpart = SsoEndpoints.MapToLocalpart(provider.Localpart.Render(claims).Trim());
        if (baseLocalpart.Length == 0)
            throw new MatrixException(403, "M_FORBIDDEN", $"Your {provider.Config.IdpName} account gives no user name for this server.");
        var displayName = provider.DisplayName?.Render(claims).Trim();
        var email = provider.Email?.Render(claims).Trim().ToLowerInvariant();
        for (var attempt = 0; attempt < LocalpartAttempts; attempt++)
        {
            var localpart = attempt == 0 ? baseLocalpart : baseLocalpart + attempt;
            if (!UserId.TryParse($"@{localpart}:{config.ServerName}", out var userId))
                break;
            if (await db.ReadAsync(s => users.GetAsync(s, userId.Value), ct) is not null)
            {
                if (provider.Config.AllowExistingUsers && await externalAccounts.LinkExistingAsync(provider.IdpId, subject, userId, ct))
                    return userId.Value;
                continue;
            }
            if (!provider.Config.EnableRegistration)
                throw new MatrixException(403, "M_FORBIDDEN", "This server creates no accounts at sign-in: ask its administrator for one.");
            var created = await externalAccounts.CreateAsync(provider.IdpId, subject, userId, displayName,
                email is { Length: > 0 } && email.Contains('@') ? email : null, ct);
            if (created is ExternalAccounts.CreateResult.Created)
                return userId.Value;
            if (created is ExternalAccounts.CreateResult.NotAllowed)
                break;
        }
        throw new MatrixException(403, "M_FORBIDDEN", $"Your {provider.Config.IdpName} user name cannot be given an account on this server.");
    }
}
