using System.Xml;
using System.Xml.Linq;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>Who a CAS server vouched for: its user name and the attributes it released (the first value of each).</summary>
public sealed record CasIdentity(string User, IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// The CAS protocol (v2/v3) as a client: where to send the browser, and the back-channel check of the ticket it brings
/// back (<c>/proxyValidate</c>, as Synapse calls it). The CAS server is the operator's, so no address guard applies.
/// </summary>
public sealed class CasClient(HomeserverConfig config, ILogger<CasClient> logger) : IDisposable
{
    private static readonly XNamespace Cas = "http://www.yale.edu/tp/cas";
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    private string ServerUrl => config.Auth.Cas.ServerUrl!.TrimEnd('/');

    /// <summary>The CAS login page that sends the browser back to <paramref name="service"/> with a ticket.</summary>
    public string LoginUrl(string service) => $"{ServerUrl}/login?service={Uri.EscapeDataString(service)}";

    /// <summary>Checks a ticket issued for <paramref name="service"/>; 401 when the CAS server refuses it, 502 when it cannot be asked.</summary>
    public async Task<CasIdentity> ValidateAsync(string ticket, string service, CancellationToken ct)
    {
        var url = $"{ServerUrl}/proxyValidate?ticket={Uri.EscapeDataString(ticket)}&service={Uri.EscapeDataString(service)}";
        string body;
        try
        {
            using var response = await _http.GetAsync(url, ct);
            body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"HTTP {(int)response.StatusCode}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("CAS ticket validation at {Server} failed: {Reason}", ServerUrl, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", "The single sign-on server could not be reached.");
        }
        return Parse(body);
    }

    private static CasIdentity Parse(string body)
    {
        XElement root;
        try
        {
            root = XElement.Parse(body);
        }
        catch (XmlException)
        {
            throw new MatrixException(502, "M_UNKNOWN", "The single sign-on server's answer is not CAS XML.");
        }
        if (root.Element(Cas + "authenticationSuccess") is not { } success)
        {
            var failure = root.Element(Cas + "authenticationFailure");
            throw new MatrixException(401, "M_UNAUTHORIZED",
                $"Single sign-on refused the ticket: {failure?.Attribute("code")?.Value ?? "no success"}.");
        }
        var user = success.Element(Cas + "user")?.Value.Trim();
        if (string.IsNullOrEmpty(user))
            throw new MatrixException(502, "M_UNKNOWN", "The single sign-on server named no user.");
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var attribute in success.Element(Cas + "attributes")?.Elements() ?? [])
            attributes.TryAdd(attribute.Name.LocalName, attribute.Value);
        return new CasIdentity(user, attributes);
    }

    public void Dispose() => _http.Dispose();
}
