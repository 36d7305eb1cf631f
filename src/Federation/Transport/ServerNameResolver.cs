using System.Collections.Concurrent;
using System.Text.Json;
using Matrix.Federation.Identifiers;

namespace Matrix.Federation.Transport;

/// <summary>Where to send requests for a server name, and the Host header (and TLS name) to use.</summary>
public sealed record ResolvedServer(Uri BaseUri, string HostHeader);

/// <summary>
/// Server discovery ("Resolving server names"): IP literals and explicit ports as given, then
/// <c>/.well-known/matrix/server</c> delegation (cached per Cache-Control, 24 h by default, 1 h after an error), then
/// SRV <c>_matrix-fed._tcp</c> (and the deprecated <c>_matrix._tcp</c>), then port 8448.
/// </summary>
public sealed class ServerNameResolver(HttpClient wellKnownClient, TimeProvider clock, bool plainHttp,
    Func<string, CancellationToken, Task<IReadOnlyList<SrvRecord>>>? srvLookup = null)
{
    public const int DefaultPort = 8448;
    private static readonly TimeSpan DefaultCache = TimeSpan.FromHours(24);
    private static readonly TimeSpan MaxCache = TimeSpan.FromHours(48);
    private static readonly TimeSpan ErrorCache = TimeSpan.FromHours(1);

    private readonly Func<string, CancellationToken, Task<IReadOnlyList<SrvRecord>>> _srv = srvLookup ?? DnsSrv.LookupAsync;
    private readonly ConcurrentDictionary<string, (string? Delegated, DateTimeOffset Expires)> _wellKnown = new(StringComparer.OrdinalIgnoreCase);

    private string Scheme => plainHttp ? "http" : "https";

    public async Task<ResolvedServer> ResolveAsync(string serverName, CancellationToken ct)
    {
        var name = ServerName.Parse(serverName);
        if (name.IsIpLiteral || name.Port is not null)
            return Direct(name.Host, name.Port ?? DefaultPort, serverName);

        if (await WellKnownAsync(name.Host, ct) is { } delegatedText && ServerName.TryParse(delegatedText, out var delegated))
        {
            if (delegated.IsIpLiteral || delegated.Port is not null)
                return Direct(delegated.Host, delegated.Port ?? DefaultPort, delegatedText);
            return await SrvAsync(delegated.Host, ct) ?? Direct(delegated.Host, DefaultPort, delegated.Host);
        }
        return await SrvAsync(name.Host, ct) ?? Direct(name.Host, DefaultPort, name.Host);
    }

    private ResolvedServer Direct(string host, int port, string hostHeader) => new(new Uri($"{Scheme}://{host}:{port}/"), hostHeader);

    private async Task<ResolvedServer?> SrvAsync(string host, CancellationToken ct)
    {
        foreach (var service in new[] { "_matrix-fed._tcp.", "_matrix._tcp." })
        {
            var records = await _srv(service + host, ct);
            if (records.Count > 0)
                return new ResolvedServer(new Uri($"{Scheme}://{records[0].Target.TrimEnd('.')}:{records[0].Port}/"), host);
        }
        return null;
    }

    private async Task<string?> WellKnownAsync(string host, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (_wellKnown.TryGetValue(host, out var cached) && cached.Expires > now)
            return cached.Delegated;
        string? delegated = null;
        var lifetime = ErrorCache;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            using var response = await wellKnownClient.GetAsync($"{Scheme}://{host}/.well-known/matrix/server", timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(timeout.Token));
                if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("m.server", out var server)
                    && server.ValueKind == JsonValueKind.String && ServerName.TryParse(server.GetString(), out _))
                    delegated = server.GetString();
                var maxAge = response.Headers.CacheControl?.MaxAge;
                lifetime = maxAge is { } age ? (age > MaxCache ? MaxCache : age) : DefaultCache;
            }
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or OperationCanceledException && !ct.IsCancellationRequested)
        {
        }
        _wellKnown[host] = (delegated, now + lifetime);
        return delegated;
    }
}
