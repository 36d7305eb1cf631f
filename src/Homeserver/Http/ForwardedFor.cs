using System.Net;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Listeners with <c>x_forwarded</c> sit behind a reverse proxy: a request's client is the address the proxy appended
/// last to <c>X-Forwarded-For</c> (the ones before it are whatever the client claimed), as Synapse's option does.
/// </summary>
public static class ForwardedFor
{
    public static void UseForwardedFor(this WebApplication app, HomeserverConfig config)
    {
        var proxied = config.Listeners.Where(l => l.XForwarded).Select(l => l.Port).ToHashSet();
        if (proxied.Count == 0)
            return;
        app.Use((context, next) =>
        {
            if (proxied.Contains(context.Connection.LocalPort)
                && context.Request.Headers["X-Forwarded-For"].LastOrDefault()?.Split(',').LastOrDefault()?.Trim() is { } last
                && IPAddress.TryParse(last, out var client))
                context.Connection.RemoteIpAddress = client;
            return next(context);
        });
    }
}
