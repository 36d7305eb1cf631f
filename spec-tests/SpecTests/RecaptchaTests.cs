using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A stand-in for Google's siteverify API (as SyTest runs one): answers success for the response "human" sent with the
/// secret "captcha-secret", and keeps what it was sent.
/// </summary>
public sealed class TestSiteVerify : IAsyncDisposable
{
    public const string Secret = "captcha-secret";
    public const string HumanResponse = "human";
    private readonly LoopbackListener _listener;

    public ConcurrentQueue<Dictionary<string, string>> Requests { get; } = new();
    public string Url => $"{_listener.BaseUrl}/recaptcha/api/siteverify";

    public TestSiteVerify() => _listener = new LoopbackListener(async context =>
    {
        using var reader = new StreamReader(context.Request.InputStream);
        var form = (await reader.ReadToEndAsync()).Split('&', StringSplitOptions.RemoveEmptyEntries).Select(pair => pair.Split('=', 2))
            .ToDictionary(pair => WebUtility.UrlDecode(pair[0]), pair => WebUtility.UrlDecode(pair.ElementAtOrDefault(1) ?? ""));
        Requests.Enqueue(form);
        var human = context.Request.Url!.AbsolutePath == "/recaptcha/api/siteverify" && context.Request.HttpMethod == "POST"
            && form.GetValueOrDefault("secret") == Secret && form.GetValueOrDefault("response") == HumanResponse;
        await LoopbackListener.RespondAsync(context, 200, new JsonObject { ["success"] = human });
    });

    public string Yaml(bool required) => $"""
        registration:
          enabled: true
          recaptcha:
            public_key: captcha-site-key
            private_key: {Secret}
            siteverify_api: {Url}
            required: {(required ? "true" : "false")}

        """;

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}

/// <summary>
/// Spec: user-interactive authentication, "Google ReCaptcha" (<c>m.login.recaptcha</c>) at registration, on a server
/// with captcha keys: the response is checked at the siteverify API with the private key.
/// </summary>
public abstract class RecaptchaTests(TestSiteVerify siteVerify, bool required) : ServerFixture("sqlite", siteVerify.Yaml(required)), IDisposable
{
    public void Dispose() => siteVerify.DisposeAsync().AsTask().GetAwaiter().GetResult();

    protected TestSiteVerify SiteVerify => siteVerify;

    protected Task<MatrixResponse> RegisterAsync(string name, object? auth) =>
        Client.PostAsync("/_matrix/client/v3/register", new { username = name, password = "pw", auth });

    [Fact]
    public async Task A_captcha_response_is_checked_at_the_siteverify_api_and_completes_the_stage_when_accepted()
    {
        var name = MatrixClient.UniqueName();
        var refused = await RegisterAsync(name, new { type = "m.login.recaptcha", response = "robot" });
        Assert.Equal(401, refused.Status);
        Assert.Equal("M_UNAUTHORIZED", refused.Errcode);
        Assert.Empty(refused.Body!["completed"]!.AsArray());

        // Without a session, as SyTest's "Register with a recaptcha" sends it.
        var passed = await RegisterAsync(name, new { type = "m.login.recaptcha", response = TestSiteVerify.HumanResponse });
        Assert.Equal(401, passed.Status);
        Assert.Equal(["m.login.recaptcha"], passed.Body!["completed"]!.AsArray().Select(s => s!.GetValue<string>()));
        var sent = SiteVerify.Requests.Last();
        Assert.Equal(TestSiteVerify.Secret, sent["secret"]);
        Assert.Equal(TestSiteVerify.HumanResponse, sent["response"]);
        Assert.Equal("127.0.0.1", sent["remoteip"]);
    }
}

/// <summary>Keys set, <c>required</c> off: no flow needs the captcha, but a response a client submits is checked (as Synapse does).</summary>
public sealed class RecaptchaOptionalTests() : RecaptchaTests(new TestSiteVerify(), required: false)
{
    [Fact]
    public async Task Registration_needs_no_captcha_and_the_captcha_stage_completes_no_flow()
    {
        var name = MatrixClient.UniqueName();
        var first = await RegisterAsync(name, auth: null);
        Assert.Equal(401, first.Status);
        Assert.Equal("[{\"stages\":[\"m.login.dummy\"]}]", first.Body!["flows"]!.ToJsonString());
        Assert.Equal("{}", first.Body!["params"]!.ToJsonString());
        var captcha = await RegisterAsync(name, new { type = "m.login.recaptcha", response = TestSiteVerify.HumanResponse, session = first.Str("session") });
        Assert.Equal(401, captcha.Status);
        var done = await RegisterAsync(name, new { type = "m.login.dummy", session = first.Str("session") });
        Assert.Equal(200, done.Status);
    }
}

/// <summary><c>required</c> on: every registration flow starts with the captcha, whose site key is in the stage's params.</summary>
public sealed class RecaptchaRequiredTests() : RecaptchaTests(new TestSiteVerify(), required: true)
{
    [Fact]
    public async Task Registration_needs_the_captcha_first()
    {
        var name = MatrixClient.UniqueName();
        var first = await RegisterAsync(name, auth: null);
        Assert.Equal(401, first.Status);
        Assert.Equal("[{\"stages\":[\"m.login.recaptcha\",\"m.login.dummy\"]}]", first.Body!["flows"]!.ToJsonString());
        Assert.Equal("captcha-site-key", first.Body!["params"]!["m.login.recaptcha"]!["public_key"]!.GetValue<string>());
        Assert.Equal(401, (await RegisterAsync(name, new { type = "m.login.dummy", session = first.Str("session") })).Status);
        Assert.Equal(200, (await RegisterAsync(name, new { type = "m.login.recaptcha", response = TestSiteVerify.HumanResponse, session = first.Str("session") })).Status);
    }

    [Fact]
    public async Task The_fallback_page_shows_the_challenge_and_a_solved_one_completes_the_stage()
    {
        var name = MatrixClient.UniqueName();
        var session = (await RegisterAsync(name, auth: null)).Str("session");
        Assert.Equal(401, (await RegisterAsync(name, new { type = "m.login.dummy", session })).Status);
        using var http = new HttpClient();
        var url = $"{Server.BaseUrl}/_matrix/client/v3/auth/m.login.recaptcha/fallback/web";
        var page = await http.GetAsync($"{url}?session={session}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("data-sitekey=\"captcha-site-key\"", await page.Content.ReadAsStringAsync());
        Assert.Contains("https://www.recaptcha.net", page.Headers.GetValues("Content-Security-Policy").Single());

        async Task<string> AnswerAsync(string response) => await (await http.PostAsync(url, new FormUrlEncodedContent(
            new Dictionary<string, string> { ["session"] = session, ["g-recaptcha-response"] = response }))).Content.ReadAsStringAsync();
        Assert.Contains("not solved", await AnswerAsync("robot"));
        Assert.Equal(401, (await RegisterAsync(name, new { session })).Status);
        Assert.Contains("authDone", await AnswerAsync(TestSiteVerify.HumanResponse));
        // Spec: the client then retries with only the session.
        Assert.Equal(200, (await RegisterAsync(name, new { session })).Status);
        Assert.Equal(400, (int)(await http.GetAsync($"{url}?session=unknown")).StatusCode);
    }
}
