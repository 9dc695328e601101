using Spectre.Console;
using Spectre.Console.Rendering;

namespace EdgeBlock.Cli;

/// <summary>
/// Tables and field lists for humans, laid out by Spectre.Console (the --json output is for programs).
/// Cells are never wrapped or cut (identifiers such as NQNs stay whole for copy and paste; a terminal
/// narrower than the table wraps the lines itself), and trailing blanks are trimmed. Headers are bold on
/// a terminal (unless NO_COLOR is set); redirected or captured output has no ANSI codes at all.
/// </summary>
internal static class Table
{
    private const int Unlimited = 4096;

    /// <summary>A table with a header row; "(none)" when there are no rows.</summary>
    public static void Write(TextWriter output, string[] headers, IEnumerable<string[]> rows)
    {
        var all = rows.ToList();
        if (all.Count == 0)
        {
            output.WriteLine("(none)");
            return;
        }
        bool color = UseColor(output);
        var table = new Spectre.Console.Table { Border = TableBorder.Simple };
        foreach (string h in headers) table.AddColumn(new TableColumn(Header(h, color)));
        foreach (var row in all) table.AddRow(row.Select(c => (IRenderable)new Text(c)).ToArray());
        Render(output, table, color);
    }

    /// <summary>"name   value" lines with the names aligned (the show commands).</summary>
    public static void Fields(TextWriter output, IEnumerable<(string Name, string Value)> fields)
    {
        bool color = UseColor(output);
        var grid = new Grid();
        grid.AddColumn(new GridColumn().PadRight(2));
        grid.AddColumn(new GridColumn());
        foreach (var (name, value) in fields) grid.AddRow(Header(name, color), new Text(value));
        Render(output, grid, color);
    }

    /// <summary>True when <paramref name="output"/> is this process's standard output and that is a terminal.</summary>
    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    private static bool UseColor(TextWriter output) =>
        IsTerminal(output) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    private static Text Header(string text, bool color) => new(text, color ? new Style(decoration: Decoration.Bold) : Style.Plain);

    private static void Render(TextWriter output, IRenderable renderable, bool color)
    {
        var buffer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(buffer),
            Ansi = color ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = color ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = Unlimited;
        console.Write(renderable);
        foreach (string line in buffer.ToString().Split('\n'))
        {
            string trimmed = line.TrimEnd('\r', ' ');
            if (trimmed.Length > 0) output.WriteLine(trimmed); // the blank frame lines of the border go
        }
    }
}
