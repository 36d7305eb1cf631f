namespace Matrix.Homeserver.Http;

/// <summary>The CORS headers the client-server spec requires on every response, so web clients such as Element work.</summary>
public static class Cors
{
    public static void UseMatrixCors(this WebApplication app) => app.Use((context, next) =>
    {
        if (HttpMethods.IsOptions(context.Request.Method))
        {
            AddHeaders(context.Response);
            context.Response.StatusCode = 204;
            return Task.CompletedTask;
        }
        // Added as the response starts, so error responses (which clear headers) carry them too.
        context.Response.OnStarting(static response =>
        {
            AddHeaders((HttpResponse)response);
            return Task.CompletedTask;
        }, context.Response);
        return next(context);
    });

    private static void AddHeaders(HttpResponse response)
    {
        response.Headers.AccessControlAllowOrigin = "*";
        response.Headers.AccessControlAllowMethods = "GET, POST, PUT, DELETE, OPTIONS";
        response.Headers.AccessControlAllowHeaders = "X-Requested-With, Content-Type, Authorization";
    }
}
