namespace Matrix.Homeserver.Http;

/// <summary>An <c>application/x-www-form-urlencoded</c> request body (the server's web pages and the OAuth 2.0 endpoints).</summary>
public static class FormBody
{
    /// <summary>The body's form; any other body, or a malformed one, is refused with the exception <paramref name="refuse"/> makes of a reason.</summary>
    public static async Task<IFormCollection> ReadAsync(HttpContext context, Func<string, Exception> refuse)
    {
        if (!context.Request.HasFormContentType)
            throw refuse("The request body must be application/x-www-form-urlencoded.");
        try
        {
            return await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw refuse("The request body is not a valid form.");
        }
    }
}
