using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Hosting;
using Matrix.Homeserver.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;

namespace Matrix.Homeserver.Tests;

public sealed class GuestAccessRoutesTests
{
    /// <summary>A misspelt entry in the guests' allow-list would silently refuse guests an endpoint the spec gives them.</summary>
    [Fact]
    public async Task Every_route_in_the_guest_allow_list_is_a_served_client_route()
    {
        var dataDir = Directory.CreateTempSubdirectory("guest-routes-");
        try
        {
            var config = ConfigLoader.TrialDefaults();
            config.DataDir = dataDir.FullName;
            await using var app = ServerHost.Build(config);
            var served = ((IEndpointRouteBuilder)app).DataSources.SelectMany(source => source.Endpoints).OfType<RouteEndpoint>()
                .Where(endpoint => endpoint.RoutePattern.RawText?.StartsWith(Routes.ClientPrefix + "/", StringComparison.Ordinal) == true)
                .SelectMany(endpoint =>
                {
                    var afterPrefix = endpoint.RoutePattern.RawText![(Routes.ClientPrefix.Length + 1)..];
                    var template = afterPrefix[(afterPrefix.IndexOf('/') + 1)..];
                    return (endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(method => $"{method} {template}");
                })
                .ToHashSet(StringComparer.Ordinal);
            Assert.Empty(GuestAccess.AllowedRoutes.Where(route => !served.Contains(route)));
        }
        finally
        {
            dataDir.Delete(recursive: true);
        }
    }
}
