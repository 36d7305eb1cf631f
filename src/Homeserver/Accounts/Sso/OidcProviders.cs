using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>The configured upstream OpenID Connect providers (<c>oidc_providers</c>), by their served IdP ID.</summary>
public sealed class OidcProviders : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    public IReadOnlyList<OidcProvider> All { get; }

    public OidcProviders(HomeserverConfig config, ILogger<OidcProvider> logger) =>
        All = config.OidcProviders.Select(provider => new OidcProvider(provider, _http, logger)).ToList();

    public OidcProvider? Find(string idpId) => All.FirstOrDefault(provider => provider.IdpId == idpId);

    public void Dispose() => _http.Dispose();
}
