using System.Text.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Signing in to the server's OAuth pages: the user name and password form (through <see cref="PasswordLogin"/>, so
/// local passwords and the LDAP directory both count, unless <c>password_config.enabled</c> is false), or "continue
/// with" each single sign-on provider (CAS, OpenID Connect), then back to <c>return_to</c>, one of this server's OAuth
/// pages. Signing out of the browser too.
/// </summary>
public sealed class LoginPage(
    PasswordLogin passwords, AccountService accounts, OAuthBrowserSessions browser, Sso.SsoEndpoints sso, Csrf csrf, RateLimiter limiter,
    HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPage("GET", OAuthPaths.Login, ShowAsync);
        app.MapPage("POST", OAuthPaths.Login, SignInAsync);
        app.MapPage("POST", OAuthPaths.Logout, SignOutAsync);
        app.MapPage("GET", OAuthPaths.Upstream + "/{idpId}", UpstreamAsync);
    }

    /// <summary>Sends the browser to sign in at a single sign-on provider; its sign-in ends signed in here, at return_to.</summary>
    private async Task UpstreamAsync(HttpContext context)
    {
        var idpId = (string)context.Request.RouteValues["idpId"]!;
        if (!sso.Providers.Any(p => p.Id == idpId))
            throw new OAuthException(404, "invalid_request", $"Unknown sign-in provider {idpId}.");
        var returnTo = ReturnTo(OAuthRoutes.QueryParameters(context));
        HtmlPages.Redirect(context, await sso.StartSignInAsync(context, idpId, new Sso.SsoTarget(null, null, returnTo)));
    }

    private Task ShowAsync(HttpContext context) =>
        WriteAsync(context, Render(ReturnTo(OAuthRoutes.QueryParameters(context)), csrf.Token(context), error: null, userName: ""));

    private async Task SignInAsync(HttpContext context)
    {
        var form = await Csrf.ReadFormAsync(context);
        var returnTo = ReturnTo(form);
        if (!config.PasswordConfig.Enabled)
            throw new OAuthException(403, "access_denied", "Password sign-in has been disabled.");
        limiter.Check("login", context.ClientIp(), config.RateLimits.Login);
        var userName = form.Optional("username") ?? "";
        var password = form.Optional("password") ?? "";
        var auth = JsonSerializer.SerializeToElement(new { identifier = new { type = "m.id.user", user = userName } });
        string? userId = null;
        try
        {
            if (userName.Length > 0 && password.Length > 0)
                userId = await passwords.LoginAsync(auth, password, context.RequestAborted);
        }
        catch (MatrixException e) when (e.Status is 400 or 403)
        {
            await WriteAsync(context, Render(returnTo, csrf.Token(context), e.Message, userName), 403);
            return;
        }
        if (userId is null)
        {
            await WriteAsync(context, Render(returnTo, csrf.Token(context), "Wrong user name or password.", userName), 401);
            return;
        }
        if ((await accounts.GetActiveUserAsync(userId, context.RequestAborted)).Locked != 0)
        {
            await WriteAsync(context, Render(returnTo, csrf.Token(context), "This account has been locked.", userName), 403);
            return;
        }
        await browser.SignInAsync(context, userId);
        HtmlPages.Redirect(context, returnTo);
    }

    private async Task SignOutAsync(HttpContext context)
    {
        var form = await Csrf.ReadFormAsync(context);
        await browser.SignOutAsync(context);
        HtmlPages.Redirect(context, OAuthPaths.LoginUrl(ReturnTo(form)));
    }

    /// <summary>The user name typed, kept when the page comes back with an error.</summary>
    public static string UserNameField(string userName) =>
        $"<label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{Html(userName)}\">";

    public static string ReturnTo(IReadOnlyDictionary<string, string> parameters) =>
        parameters.Optional("return_to") is { } path && OAuthPaths.IsSafeReturnTo(path) ? path : OAuthPaths.Account;

    private string Render(string returnTo, string csrfToken, string? error, string userName)
    {
        var passwordForm = config.PasswordConfig.Enabled
            ? Form(OAuthPaths.Login, csrfToken,
                Hidden("return_to", returnTo)
                + UserNameField(userName) + Field("password", "Password", "password", "current-password"),
                ("sign_in", "1", "Sign in"))
            : "";
        var providers = string.Concat(sso.Providers.Select(p =>
            $"<p><a href=\"{Html($"{OAuthPaths.Upstream}/{Uri.EscapeDataString(p.Id)}?return_to={Uri.EscapeDataString(returnTo)}")}\">Continue with {Html(p.Name)}</a></p>"));
        if (passwordForm.Length == 0 && providers.Length == 0)
            providers = "<p>No way of signing in is available on this server.</p>";
        var signUp = SignUpPage.IsOpen(config) ? $"<p>New here? <a href=\"{Html(SignUpPage.Url(returnTo))}\">Create an account</a></p>" : "";
        return Page($"Sign in to {config.ServerName}", Error(error) + passwordForm + providers + signUp);
    }
}
