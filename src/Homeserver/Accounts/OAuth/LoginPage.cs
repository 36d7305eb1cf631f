using System.Text.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Signing in to the server's OAuth pages: the user name and password form (through <see cref="PasswordLogin"/>, so
/// local passwords and the LDAP directory both count, unless <c>password_config.enabled</c> is false), then back to
/// <c>return_to</c>, one of this server's OAuth pages. Signing out of the browser too.
/// </summary>
public sealed class LoginPage(PasswordLogin passwords, AccountService accounts, OAuthBrowserSessions browser, Csrf csrf, RateLimiter limiter, HomeserverConfig config)
    : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPage("GET", OAuthPaths.Login, ShowAsync);
        app.MapPage("POST", OAuthPaths.Login, SignInAsync);
        app.MapPage("POST", OAuthPaths.Logout, SignOutAsync);
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

    /// <param name="upstreamProviders">
    /// UPSTREAM SIGN-IN LINKS: "Continue with ..." links, one per (name, url), e.g. to an upstream OpenID provider whose
    /// callback calls <see cref="OAuthBrowserSessions.SignInAsync"/> and then redirects to return_to. None yet.
    /// </param>
    private string Render(string returnTo, string csrfToken, string? error, string userName,
        IReadOnlyList<(string Name, string Url)>? upstreamProviders = null)
    {
        var passwordForm = config.PasswordConfig.Enabled
            ? Form(OAuthPaths.Login, csrfToken,
                Hidden("return_to", returnTo)
                + UserNameField(userName) + Field("password", "Password", "password", "current-password"),
                ("sign_in", "1", "Sign in"))
            : "";
        var providers = string.Concat((upstreamProviders ?? []).Select(p => $"<p><a href=\"{Html(p.Url)}\">Continue with {Html(p.Name)}</a></p>"));
        if (passwordForm.Length == 0 && providers.Length == 0)
            providers = "<p>No way of signing in is available on this server.</p>";
        var signUp = SignUpPage.IsOpen(config) ? $"<p>New here? <a href=\"{Html(SignUpPage.Url(returnTo))}\">Create an account</a></p>" : "";
        return Page($"Sign in to {config.ServerName}", Error(error) + passwordForm + providers + signUp);
    }
}
