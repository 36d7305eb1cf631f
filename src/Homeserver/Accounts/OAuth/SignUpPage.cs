using Matrix.Homeserver.ApplicationServices;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Creating an account in the browser (the spec's "User registration", <c>prompt=create</c>): offered when registration
/// is open without a registration token and passwords are on, with the rules of <c>/register</c> for the user name
/// and password; the new account is signed in and sent on to <c>return_to</c>.
/// </summary>
public sealed class SignUpPage(AccountService accounts, AppServiceRegistry appServices, OAuthBrowserSessions browser, Csrf csrf, RateLimiter limiter,
    HomeserverConfig config) : IEndpoints
{
    public const string Path = OAuthRoutes.Prefix + "/signup";

    public static bool IsOpen(HomeserverConfig config) =>
        config.Registration.Enabled && !config.Registration.RequiresToken && config.PasswordConfig.Enabled;

    public static string Url(string returnTo) => $"{Path}?return_to={Uri.EscapeDataString(returnTo)}";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPage("GET", Path, context =>
        {
            RequireOpen();
            return WriteAsync(context, Render(LoginPage.ReturnTo(OAuthRoutes.QueryParameters(context)), csrf.Token(context), null, ""));
        });
        app.MapPage("POST", Path, SignUpAsync);
    }

    private void RequireOpen()
    {
        if (!IsOpen(config))
            throw new OAuthException(403, "access_denied", "Registration is closed on this server.");
    }

    private async Task SignUpAsync(HttpContext context)
    {
        var form = await Csrf.ReadFormAsync(context);
        RequireOpen();
        var returnTo = LoginPage.ReturnTo(form);
        limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        var userName = form.Optional("username") ?? "";
        var password = form.Optional("password") ?? "";
        try
        {
            if (password.Length == 0 || password != form.Optional("password_again"))
                throw MatrixException.InvalidParam("The passwords differ or are empty.");
            var userId = accounts.ValidateNewLocalpart(userName);
            appServices.CheckUserIdFree(userId.Value, actor: null);
            if (await accounts.IsUserIdTakenAsync(userId, context.RequestAborted))
                throw new MatrixException(400, "M_USER_IN_USE", "This user name is taken.");
            await accounts.RegisterAsync(userId, password, isAdmin: false, deviceId: null, deviceDisplayName: null, inhibitLogin: true,
                wantsRefreshToken: false, alsoInTransaction: null, context.RequestAborted);
            await browser.SignInAsync(context, userId.Value);
        }
        catch (MatrixException e) when (e.Status == 400)
        {
            await WriteAsync(context, Render(returnTo, csrf.Token(context), e.Message, userName), 400);
            return;
        }
        HtmlPages.Redirect(context, returnTo);
    }

    private string Render(string returnTo, string csrfToken, string? error, string userName) =>
        Page($"Create an account on {config.ServerName}", Error(error) + Form(Path, csrfToken,
            Hidden("return_to", returnTo)
            + LoginPage.UserNameField(userName) + Field("password", "Password", "password", "new-password")
            + Field("password_again", "Password again", "password", "new-password"),
            ("create", "1", "Create account"))
            + $"<p>Have an account? <a href=\"{Html(OAuthPaths.LoginUrl(returnTo))}\">Sign in</a></p>");
}
