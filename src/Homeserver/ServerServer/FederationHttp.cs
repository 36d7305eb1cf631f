using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// The HTTP client for talking to other servers: TLS certificates checked against the system store plus the CA file
/// of <c>federation.trusted_ca_file</c>; loopback is allowed (unlike URL previews); bounded response sizes and times.
/// </summary>
public static class FederationHttp
{
    public const long MaxResponseBytes = 50 * 1024 * 1024;

    public static HttpClient CreateClient(HomeserverConfig config)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 20,
            AllowAutoRedirect = false,
        };
        if (config.Federation.TrustedCaFile is { } caFile)
        {
            var extra = new X509Certificate2Collection();
            extra.ImportFromPemFile(caFile);
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
                    errors == SslPolicyErrors.None || (certificate is not null && ChainsTo(new X509Certificate2(certificate), extra, errors)),
            };
        }
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60), MaxResponseContentBufferSize = MaxResponseBytes };
    }

    /// <summary>Accepts a certificate whose only fault is an untrusted root, when it chains to one of the extra CAs.</summary>
    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection roots, SslPolicyErrors errors)
    {
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors)
            return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
