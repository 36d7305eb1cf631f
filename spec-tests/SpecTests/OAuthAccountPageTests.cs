using System.Net;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "Account management" (<c>account_management_uri</c> and its actions): profile, sessions, signing a session
/// out, deactivation, and a cross-signing reset approved in the browser (the <c>m.oauth</c> UIA stage).
/// </summary>
public abstract class OAuthAccountPageTests(OAuthServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string Account = "/_matrix/oauth2/account";

    /// <summary>A browser signed in as <paramref name="user"/>, on the page of <paramref name="action"/>.</summary>
    private async Task<(OAuthBrowser Browser, string Html)> OpenAsync(LoggedInUser user, string query)
    {
        var browser = new OAuthBrowser(fixture.Server.BaseUrl);
        var first = await browser.GetAsync($"{Account}{query}");
        Assert.Equal(HttpStatusCode.Redirect, first.Status);
        Assert.StartsWith("/_matrix/oauth2/login?return_to=", first.Location);
        var login = await browser.GetAsync(first.Location!);
        var signedIn = await browser.SubmitAsync("/_matrix/oauth2/login", ("csrf", OAuthBrowser.CsrfOf(login.Html)),
            ("return_to", $"{Account}{query}"), ("username", user.Localpart), ("password", user.Password));
        Assert.Equal($"{Account}{query}", signedIn.Location);
        var page = await browser.GetAsync(signedIn.Location!);
        Assert.Equal(HttpStatusCode.OK, page.Status);
        return (browser, page.Html);
    }

    [Fact]
    public async Task The_profile_page_changes_the_display_name()
    {
        var user = await C.RegisterAsync();
        var (browser, html) = await OpenAsync(user, "?action=org.matrix.profile");
        Assert.Contains(user.UserId, html);
        var forged = await browser.SubmitAsync(Account, ("do", "set_displayname"), ("displayname", "Forged"));
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);
        var saved = await browser.SubmitAsync(Account, ("csrf", OAuthBrowser.CsrfOf(html)), ("do", "set_displayname"), ("displayname", "Renamed Person"));
        Assert.Equal(HttpStatusCode.Redirect, saved.Status);
        var profile = await C.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(user.UserId)}/displayname");
        Assert.Equal("Renamed Person", profile.Str("displayname"));
    }

    [Fact]
    public async Task Sessions_are_listed_viewed_and_signed_out()
    {
        var user = await C.RegisterAsync(deviceId: "PHONEDEVICE");
        var (browser, list) = await OpenAsync(user, "?action=org.matrix.sessions_list");
        Assert.Contains("PHONEDEVICE", list);
        var view = await browser.GetAsync($"{Account}?action=org.matrix.device_view&device_id=PHONEDEVICE");
        Assert.Contains("PHONEDEVICE", view.Html);
        var unknown = await browser.GetAsync($"{Account}?action=org.matrix.session_view&device_id=NOSUCHDEVICE");
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        var confirm = await browser.GetAsync($"{Account}?action=org.matrix.device_delete&device_id=PHONEDEVICE");
        Assert.Contains("Sign out", confirm.Html);

        var forged = await browser.SubmitAsync(Account, ("do", "end_session"), ("device_id", "PHONEDEVICE"));
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        var ended = await browser.SubmitAsync(Account, ("csrf", OAuthBrowser.CsrfOf(confirm.Html)), ("do", "end_session"), ("device_id", "PHONEDEVICE"));
        Assert.Equal(HttpStatusCode.Redirect, ended.Status);
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken);
        Assert.Equal(401, whoami.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", whoami.Errcode);
    }

    [Fact]
    public async Task Deactivation_needs_confirming_and_ends_everything()
    {
        var user = await C.RegisterAsync();
        var (browser, page) = await OpenAsync(user, "?action=org.matrix.account_deactivate");
        var unconfirmed = await browser.SubmitAsync(Account, ("csrf", OAuthBrowser.CsrfOf(page)), ("do", "deactivate"));
        Assert.Equal(HttpStatusCode.BadRequest, unconfirmed.Status);
        var done = await browser.SubmitAsync(Account, ("csrf", OAuthBrowser.CsrfOf(page)), ("do", "deactivate"), ("confirm", "yes"));
        Assert.Equal(HttpStatusCode.OK, done.Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(403, (await C.LoginAsync(user.Localpart, user.Password)).Status);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync(Account)).Status);
    }

    [Fact]
    public async Task A_cross_signing_reset_approved_in_the_browser_needs_no_other_auth()
    {
        var alice = new TestDevice(await C.RegisterAsync());
        Assert.Equal(200, (await alice.UploadAsync(C)).Status);
        const string Upload = "/_matrix/client/v3/keys/device_signing/upload";
        Assert.Equal(200, (await C.PostAsync(Upload, alice.CreateCrossSigningKeys().ToJsonString(), alice.User.AccessToken)).Status);

        var replacement = alice.CreateCrossSigningKeys();
        var challenged = await C.PostAsync(Upload, replacement.ToJsonString(), alice.User.AccessToken);
        Assert.Equal(401, challenged.Status);
        Assert.Contains(challenged.Body!["flows"]!.AsArray(), f => f!["stages"]![0]!.GetValue<string>() == "m.oauth");
        var url = challenged.Body!["params"]!["m.oauth"]!["url"]!.GetValue<string>();
        Assert.Equal($"{fixture.Server.BaseUrl}{Account}?action=org.matrix.cross_signing_reset", url);

        var (browser, page) = await OpenAsync(alice.User, "?action=org.matrix.cross_signing_reset");
        var approved = await browser.SubmitAsync(Account, ("csrf", OAuthBrowser.CsrfOf(page)), ("do", "reset_cross_signing"));
        Assert.Equal(HttpStatusCode.OK, approved.Status);
        replacement["auth"] = new JsonObject { ["session"] = challenged.Str("session") };
        var replaced = await C.PostAsync(Upload, replacement.ToJsonString(), alice.User.AccessToken);
        Assert.True(replaced.Status == 200, replaced.ToString());
    }
}

public sealed class OAuthAccountPageTestsSqlite(SqliteOAuthServer fixture) : OAuthAccountPageTests(fixture), IClassFixture<SqliteOAuthServer>;

public sealed class OAuthAccountPageTestsPostgres(PostgresOAuthServer fixture) : OAuthAccountPageTests(fixture), IClassFixture<PostgresOAuthServer>;
