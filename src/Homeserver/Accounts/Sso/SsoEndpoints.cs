using System.Text;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// Single sign-on (spec: client-server API, "Client login via SSO") through a CAS server or upstream OpenID Connect
/// providers: the identity providers <c>GET /login</c> lists, the redirect to one (or a page to pick one), the CAS
/// ticket the browser comes back with, and the fallback page of the <c>m.login.sso</c> stage of user-interactive auth.
/// Synapse's legacy <c>/login/cas/*</c> paths are served too; OIDC sign-ins come back through <see cref="OidcSignIn"/>.
/// </summary>
public sealed class SsoEndpoints(
    CasClient cas, OidcProviders oidc, OidcSignIn oidcSignIn, SsoCompletion completion, ExternalAccounts externalAccounts,
    ExternalIdStore externalIds, UserInteractiveAuth uia, Database db, HomeserverConfig config) : IEndpoints
{
    public const string CasIdpId = "cas";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "login/sso/redirect", RedirectAsync);
        app.MapV3("GET", "login/sso/redirect/{idpId}", RedirectAsync);
        app.MapV3("GET", "login/cas/redirect", RedirectAsync);
        app.MapV3("GET", "login/cas/ticket", TicketAsync);
        app.MapV3("GET", $"auth/{AuthTypes.Sso}/fallback/web", FallbackAsync);
    }

    public bool Enabled => config.Auth.Cas.Enabled || oidc.All.Count > 0;

    /// <summary>The providers people may sign in through: their IdP IDs and names.</summary>
    public IEnumerable<(string Id, string Name)> Providers => IdentityProviders().Select(p => ((string)p["id"]!, (string)p["name"]!));

    /// <summary>The providers people may sign in through, in the shape of <c>m.login.sso</c>'s <c>identity_providers</c>.</summary>
    private IEnumerable<JsonObject> IdentityProviders()
    {
        if (config.Auth.Cas.Enabled)
            yield return new JsonObject { ["id"] = CasIdpId, ["name"] = config.Auth.Cas.IdpName };
        foreach (var provider in oidc.All)
        {
            var entry = new JsonObject { ["id"] = provider.IdpId, ["name"] = provider.Config.IdpName };
            if (provider.Config.IdpIcon is { } icon)
                entry["icon"] = icon;
            if (provider.Config.IdpBrand is { } brand)
                entry["brand"] = brand;
            yield return entry;
        }
    }

    /// <summary>What <c>GET /login</c> lists when single sign-on is configured.</summary>
    public IEnumerable<JsonObject> LoginFlows()
    {
        if (!Enabled)
            yield break;
        yield return new JsonObject { ["type"] = AuthTypes.Sso, ["identity_providers"] = new JsonArray([.. IdentityProviders()]) };
        if (config.Auth.Cas.Enabled)
            yield return new JsonObject { ["type"] = "m.login.cas" };
    }

    private async Task RedirectAsync(HttpContext context)
    {
        RequireSso();
        var redirectUrl = ClientRedirectUrl(context);
        var idpId = context.Request.RouteValues["idpId"] as string;
        if (context.Request.Path.Value!.EndsWith("/login/cas/redirect", StringComparison.Ordinal))
            idpId = CasIdpId;
        if (idpId is null)
        {
            var all = IdentityProviders().ToList();
            if (all.Count > 1)
            {
                await HtmlResponse.WriteAsync(context, SsoPages.PickProvider(config.ServerName, all.Select(p =>
                    ((string)p["name"]!, $"{config.EffectivePublicBaseurl}_matrix/client/v3/login/sso/redirect/{Uri.EscapeDataString((string)p["id"]!)}"
                        + $"?redirectUrl={Uri.EscapeDataString(redirectUrl)}"))));
                return;
            }
            idpId = (string)all[0]["id"]!;
        }
        context.Response.Redirect(await StartSignInAsync(context, idpId, new SsoTarget(redirectUrl, null, null)));
    }

    /// <summary>Where to send the browser to sign in at <paramref name="idpId"/> and come back to <paramref name="target"/>.</summary>
    public async Task<string> StartSignInAsync(HttpContext context, string idpId, SsoTarget target)
    {
        if (idpId == CasIdpId && config.Auth.Cas.Enabled)
            return cas.LoginUrl(TicketUrl(target));
        var provider = oidc.Find(idpId) ?? throw new MatrixException(404, "M_NOT_FOUND", $"Unknown identity provider {idpId}.");
        return await oidcSignIn.StartAsync(context, provider, target);
    }

    private async Task TicketAsync(HttpContext context)
    {
        RequireCas();
        var ct = context.RequestAborted;
        var ticket = context.Query("ticket");
        if (ticket.Length == 0)
            throw MatrixException.MissingParam("ticket");
        var target = context.Query("session") is { Length: > 0 } session
            ? new SsoTarget(null, session, null)
            : context.Query("returnTo") is { Length: > 0 } returnTo && OAuth.OAuthPaths.IsSafeReturnTo(returnTo)
                ? new SsoTarget(null, null, returnTo)
                : new SsoTarget(ClientRedirectUrl(context), null, null);
        var identity = await cas.ValidateAsync(ticket, TicketUrl(target), ct);
        foreach (var (name, value) in config.Auth.Cas.RequiredAttributes)
            if (!identity.Attributes.TryGetValue(name, out var actual) || (value is not null && actual != value))
                throw MatrixException.Forbidden("Your single sign-on account lacks an attribute this server requires.");
        var userId = await AccountOfAsync(identity, ct);
        await completion.FinishAsync(context, target, userId);
    }

    /// <summary>
    /// The UIA fallback's page: confirm who you are at the provider you signed in with (the first one linked to your
    /// account, as Synapse picks), coming back to complete the session's stage.
    /// </summary>
    private async Task FallbackAsync(HttpContext context)
    {
        RequireSso();
        var ct = context.RequestAborted;
        var session = context.Query("session");
        if (session.Length == 0)
            throw MatrixException.MissingParam("session");
        var live = await uia.LiveSessionAsync(session, ct)
            ?? throw new MatrixException(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.");
        var linked = live.UserId is null ? [] : (await db.ReadAsync(s => externalIds.ListForUserAsync(s, live.UserId), ct)).Select(l => l.AuthProvider).ToList();
        var provider = IdentityProviders().FirstOrDefault(p => linked.Contains((string)p["id"]!)) ?? IdentityProviders().First();
        var url = await StartSignInAsync(context, (string)provider["id"]!, new SsoTarget(null, session, null));
        await HtmlResponse.WriteAsync(context, SsoPages.ConfirmIdentity((string)provider["name"]!, url));
    }

    /// <summary>
    /// The account of a CAS user: the one linked to them, else the one with their (mapped) name, created at their first
    /// sign-in. Accounts predating single sign-on are found by name, as Synapse does for CAS.
    /// </summary>
    private async Task<string> AccountOfAsync(CasIdentity identity, CancellationToken ct)
    {
        if (await db.ReadAsync(s => externalIds.FindUserAsync(s, ExternalIdStore.Cas, identity.User), ct) is { } linked)
            return linked;
        var displayName = config.Auth.Cas.DisplaynameAttribute is { } attribute && identity.Attributes.TryGetValue(attribute, out var name)
            ? name
            : identity.User;
        return await externalAccounts.EnsureAsync(ExternalIdStore.Cas, identity.User, MapToLocalpart(identity.User), displayName, ct)
            ?? throw MatrixException.Forbidden("Your single sign-on user name cannot be given an account on this server.");
    }

    /// <summary>
    /// A provider's user name as a localpart, as Synapse maps it: lower-cased; every byte outside the characters
    /// localparts allow written as <c>=xx</c>; a leading underscore (reserved) escaped the same way.
    /// </summary>
    public static string MapToLocalpart(string name)
    {
        var mapped = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(name.ToLowerInvariant()))
        {
            var c = (char)b;
            if (b < 0x80 && (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || "._=-/+".Contains(c)) && !(c == '_' && mapped.Length == 0))
                mapped.Append(c);
            else
                mapped.Append('=').Append(b.ToString("x2"));
        }
        return mapped.ToString();
    }

    private void RequireSso()
    {
        if (!Enabled)
            throw new MatrixException(404, "M_UNRECOGNIZED", "Single sign-on is not configured on this server.");
    }

    private void RequireCas()
    {
        if (!config.Auth.Cas.Enabled)
            throw new MatrixException(404, "M_UNRECOGNIZED", "Single sign-on through CAS is not configured on this server.");
    }

    private static string ClientRedirectUrl(HttpContext context)
    {
        var url = context.Query("redirectUrl");
        if (url.Length == 0)
            throw MatrixException.MissingParam("redirectUrl");
        if (!Uri.TryCreate(url, UriKind.Absolute, out _))
            throw MatrixException.InvalidParam("redirectUrl must be an absolute URL.");
        return url;
    }

    /// <summary>
    /// Where the CAS server sends the browser back to (its "service", naming where the sign-in goes): Synapse's r0 path,
    /// which CAS servers are configured for.
    /// </summary>
    private string TicketUrl(SsoTarget target)
    {
        var (parameter, value) = target switch
        {
            { UiaSession: { } session } => ("session", session),
            { ReturnTo: { } returnTo } => ("returnTo", returnTo),
            _ => ("redirectUrl", target.ClientRedirectUrl!),
        };
        return $"{config.EffectivePublicBaseurl}_matrix/client/r0/login/cas/ticket?{parameter}={Uri.EscapeDataString(value)}";
    }
}
