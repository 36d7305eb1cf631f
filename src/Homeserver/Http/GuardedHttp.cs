using System.Net;
using System.Net.Sockets;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>A request was refused because its target resolved only to addresses (or a host name) the configuration denies.</summary>
public sealed class BlockedTargetException(string message) : Exception(message);

/// <summary>
/// The one HTTP client for URLs that users or remote servers choose (URL previews, push gateways, media redirects): every
/// connection, redirects included, is checked after DNS resolution against <c>outbound_http</c>'s address lists (and
/// the URL preview host deny list), so neither a hostile name nor DNS rebinding reaches loopback, private or
/// link-local services. Callers bound each request's time with their own cancellation.
/// </summary>
public sealed class GuardedHttp : IDisposable
{
    private readonly IPNetwork[] _denied;
    private readonly IPNetwork[] _allowed;
    private readonly List<string> _deniedHosts;
    private readonly string _userAgent;

    public HttpClient Client { get; }

    public GuardedHttp(HomeserverConfig config)
    {
        var outbound = config.OutboundHttp;
        _denied = outbound.IpRangeDenylist.Select(r => IPNetwork.Parse(r)).ToArray();
        _allowed = outbound.IpRangeAllowlist.Select(r => IPNetwork.Parse(r)).ToArray();
        _deniedHosts = config.Media.UrlPreview.HostDenylist;
        _userAgent = outbound.UserAgent.Replace(' ', '-');
        Client = CreateClient(acceptAnyCertificate: false);
    }

    /// <summary>
    /// Another client under the same address rules; <paramref name="acceptAnyCertificate"/> is for the test-only
    /// <c>identity_servers.insecure_skip_tls_verify</c>.
    /// </summary>
    public HttpClient CreateClient(bool acceptAnyCertificate)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            UseProxy = false,
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 5,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
            AutomaticDecompression = DecompressionMethods.All,
        };
        if (acceptAnyCertificate)
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd(_userAgent);
        return client;
    }

    public bool IsAllowed(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        return _allowed.Any(n => n.Contains(address)) || !_denied.Any(n => n.Contains(address));
    }

    public bool IsHostDenied(string host) => _deniedHosts.Any(pattern => pattern.StartsWith("*.", StringComparison.Ordinal)
        ? host.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase) || host.Equals(pattern[2..], StringComparison.OrdinalIgnoreCase)
        : host.Equals(pattern, StringComparison.OrdinalIgnoreCase));

    /// <summary>True when <paramref name="exception"/> (or what it wraps) is a refusal by this guard.</summary>
    public static bool IsBlocked(Exception exception, out string message)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is BlockedTargetException blocked)
            {
                message = blocked.Message;
                return true;
            }
        message = "";
        return false;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host.Trim('[', ']');
        if (IsHostDenied(host))
            throw new BlockedTargetException($"the host {host} is denied by configuration");
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var allowed = addresses.Where(IsAllowed).ToList();
        if (allowed.Count == 0)
            throw new BlockedTargetException($"{host} resolves only to addresses that are not allowed");
        Exception? last = null;
        foreach (var address in allowed)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
        }
        throw last!;
    }

    public void Dispose() => Client.Dispose();
}
