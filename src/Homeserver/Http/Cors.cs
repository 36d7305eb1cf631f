namespace Matrix.Homeserver.Http;

/// <summary>The CORS headers the client-server spec requires on every response, so web clients such as Element work.</summary>
public static class Cors
{
    public static void UseMatrixCors(this WebApplication app) => app.Use(async (context, next) =>
    {
        var headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = "*";
        headers.AccessControlAllowMethods = "GET, POST, PUT, DELETE, OPTIONS";
        headers.AccessControlAllowHeaders = "X-Requested-With, Content-Type, Authorization";
        if (HttpMethods.IsOptions(context.Request.Method))
        {
            context.Response.StatusCode = 204;
            return;
        }
        await next();
    });
}
