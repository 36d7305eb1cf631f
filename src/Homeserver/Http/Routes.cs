namespace Matrix.Homeserver.Http;

/// <summary>A group of endpoints for one spec module; every implementation is mapped at start-up.</summary>
public interface IEndpoints
{
    void Map(IEndpointRouteBuilder app);
}

public static class Routes
{
    public const string ClientPrefix = "/_matrix/client";

    /// <summary>Maps a v3 client endpoint, and its r0 alias that older clients (matrix-nio) still call, as Synapse does.</summary>
    public static void MapV3(this IEndpointRouteBuilder app, string method, string path, RequestDelegate handler)
    {
        app.MapMethods($"{ClientPrefix}/v3/{path}", [method], handler);
        app.MapMethods($"{ClientPrefix}/r0/{path}", [method], handler);
    }

    public static void MapV1(this IEndpointRouteBuilder app, string method, string path, RequestDelegate handler) =>
        app.MapMethods($"{ClientPrefix}/v1/{path}", [method], handler);

    /// <summary>A route value. ASP.NET Core decodes every escape except <c>%2F</c>; IDs such as v3 event IDs contain '/', so that is decoded here.</summary>
    public static string Route(this HttpContext context, string name) => JsonFields.WithoutNul(
        (context.Request.RouteValues[name] as string ?? throw MatrixException.MissingParam(name)).Replace("%2F", "/", StringComparison.OrdinalIgnoreCase), name);

    /// <summary>A query parameter, or "" when absent.</summary>
    public static string Query(this HttpContext context, string name) => JsonFields.WithoutNul(context.Request.Query[name].ToString(), name);

    public static string ClientIp(this HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}
