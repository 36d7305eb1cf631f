using System.Security.Cryptography;
using System.Text;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// CSRF protection for every form of the OAuth pages (double-submit): a random SameSite=Strict cookie, which another
/// site's form post does not carry, repeated in a hidden field.
/// </summary>
public sealed class Csrf(HomeserverConfig config)
{
    public const string FieldName = "csrf";
    private const string CookieName = "hs_oauth_csrf";

    /// <summary>The token for the page's forms, set as a cookie when the browser has none yet.</summary>
    public string Token(HttpContext context)
    {
        if (context.Items.TryGetValue(typeof(Csrf), out var issued))
            return (string)issued!;
        if (context.Request.Cookies[CookieName] is not { Length: >= 32 } token)
        {
            token = Secrets.NewToken("");
            context.Response.Cookies.Append(CookieName, token, OAuthBrowserSessions.Cookie(config, maxAge: null, SameSiteMode.Strict));
        }
        context.Items[typeof(Csrf)] = token;
        return token;
    }

    /// <summary>A posted form of the pages, refused unless it carries the browser's CSRF token.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> ReadFormAsync(HttpContext context)
    {
        var form = await OAuthRoutes.ReadFormAsync(context);
        Check(context, form);
        return form;
    }

    private static void Check(HttpContext context, IReadOnlyDictionary<string, string> form)
    {
        var cookie = context.Request.Cookies[CookieName] ?? "";
        var field = form.GetValueOrDefault(FieldName) ?? "";
        if (cookie.Length == 0 || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(cookie), Encoding.UTF8.GetBytes(field)))
            throw new OAuthException(403, "access_denied", "The form has expired or did not come from this server: reload the page and try again.");
    }
}
