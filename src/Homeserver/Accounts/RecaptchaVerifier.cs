using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// The <c>m.login.recaptcha</c> stage (spec: user-interactive authentication, "Google ReCaptcha"): the response a client
/// got from the challenge is checked at the operator's siteverify API (Google's, or one speaking its protocol) with the
/// private key. The service is the operator's choice, so no address guard applies (as for CAS).
/// </summary>
public sealed class RecaptchaVerifier(HomeserverConfig config, ILogger<RecaptchaVerifier> logger) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = TimeSpan.FromSeconds(30) };

    private RecaptchaConfig Recaptcha => config.Registration.Recaptcha;

    /// <summary>The stage's <c>params</c>: what a client needs to show the challenge.</summary>
    public JsonObject Params => new() { ["public_key"] = Recaptcha.PublicKey };

    /// <summary>Whether the siteverify API accepts the response; 502 when it cannot be asked.</summary>
    public async Task<bool> VerifyAsync(string response, string? clientIp, CancellationToken ct)
    {
        var form = new Dictionary<string, string> { ["secret"] = Recaptcha.PrivateKey!, ["response"] = response };
        if (clientIp is not null)
            form["remoteip"] = clientIp;
        try
        {
            using var answer = await _http.PostAsync(Recaptcha.SiteverifyApi, new FormUrlEncodedContent(form), ct);
            answer.EnsureSuccessStatusCode();
            var body = JsonNode.Parse(await answer.Content.ReadAsStringAsync(ct)) as JsonObject;
            return body?["success"] is JsonValue success && success.TryGetValue<bool>(out var ok) && ok;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException || e is TaskCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("reCAPTCHA verification at {Api} failed: {Reason}", Recaptcha.SiteverifyApi, e.Message);
            throw new Http.MatrixException(502, "M_UNKNOWN", "The captcha service could not be reached.");
        }
    }

    public void Dispose() => _http.Dispose();
}
