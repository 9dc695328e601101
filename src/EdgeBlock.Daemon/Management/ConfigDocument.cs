using System.Text.Json;

namespace EdgeBlock.Daemon.Management;

/// <summary>Checks an imported document before a format reader walks it.</summary>
public static class ConfigDocument
{
    /// <summary>
    /// System.Text.Json checks that a string is UTF-8 only when it is read: a document with a malformed string
    /// would otherwise fail deep inside a reader with an InvalidOperationException (a 500). Found by fuzzing.
    /// </summary>
    public static void RequireValidText(JsonElement element, string at = "document")
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name = Read(() => property.Name, at);
                    RequireValidText(property.Value, $"{at}.{name}");
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in element.EnumerateArray()) RequireValidText(item, $"{at}[{i++}]");
                break;
            case JsonValueKind.String:
                Read(element.GetString, at);
                break;
        }
    }

    private static string Read(Func<string?> read, string at)
    {
        try
        {
            return read() ?? "";
        }
        catch (InvalidOperationException)
        {
            throw ManagementException.Invalid($"{at}: a string that is not valid UTF-8");
        }
    }
}
