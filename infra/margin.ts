// The refresh margin the refresher gets: the longest gap between two ticks of the schedule plus
// ten minutes, so a token never expires between two ticks. Pure: no Pulumi, testable directly.
import { CronExpressionParser, type CronExpression } from "cron-parser";

/** Bitrix24 access tokens live one hour. */
export const accessTokenLifetimeSeconds = 3600;
/** Head room on top of the longest gap: covers a slow tick, a cold start and a retried delivery. */
export const marginHeadroomSeconds = 600;
/** The schedule the guide's users know, tightened so the derived margin is the refresher's default 1200 s. */
export const defaultSchedule = "*/10 * * * *";

export interface TickGap {
    /** Longest time between two consecutive ticks, in seconds. */
    seconds: number;
    /** False when `seconds` is only a lower bound: the schedule skips whole hours or days, which no valid schedule does. */
    exact: boolean;
}

/** Cloud Scheduler's unix-cron grammar: five fields of numbers, ranges, steps, lists and month/day names. */
const fieldNames = ["minute", "hour", "day of month", "month", "day of week"] as const;
const monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/**
 * Returns why `schedule` is not a five-field unix-cron expression that Cloud Scheduler accepts,
 * or undefined when it is one. cron-parser alone is too lenient here: it takes a seconds field,
 * `@hourly`, `L`, `#` and `H`, none of which Cloud Scheduler documents.
 */
export function cronSyntaxProblem(schedule: string): string | undefined {
    const fields = schedule.trim().split(/\s+/);
    if (schedule.trim() === "" || fields.length !== 5) {
        return `needs exactly five fields (minute hour day-of-month month day-of-week), got ${schedule.trim() === "" ? "none" : fields.length}`;
    }
    for (const [index, field] of fields.entries()) {
        const names = index === 3 ? monthNames : index === 4 ? dayNames : [];
        for (const item of field.split(",")) {
            const [range, step, extra] = item.split("/");
            const atoms = range === "*" ? [] : (range ?? "").split("-");
            const atomOk = (atom: string) => /^\d{1,2}$/.test(atom) || names.includes(atom.toLowerCase());
            const ok =
                extra === undefined &&
                (step === undefined || /^\d{1,2}$/.test(step)) &&
                (range === "*" || (atoms.length >= 1 && atoms.length <= 2 && atoms.every(atomOk)));
            if (!ok) return `the ${fieldNames[index]} field "${field}" is not unix-cron (numbers, ranges a-b, steps /n, lists a,b${names.length > 0 ? ", names" : ""})`;
        }
    }
    return undefined;
}

function parse(schedule: string, timeZone: string, options: { currentDate?: Date; endDate?: Date } = {}): CronExpression {
    return CronExpressionParser.parse(schedule.trim(), { tz: timeZone, ...options });
}

function covers(values: readonly (number | string)[], from: number, to: number, sundayIsSeven = false): boolean {
    const set = new Set(values.map((v) => (sundayIsSeven && v === 7 ? 0 : v)));
    for (let v = from; v <= to; v++) if (!set.has(v)) return false;
    return true;
}

/** UTC offset of `timeZone` at `instant`, in minutes, from the platform's time zone data. */
function offsetMinutes(formatter: Intl.DateTimeFormat, instant: number): number {
    const name = formatter.formatToParts(new Date(instant)).find((p) => p.type === "timeZoneName")?.value ?? "GMT";
    const match = /^GMT(?:([+-])(\d{1,2})(?::(\d{2}))?)?$/.exec(name);
    if (!match || !match[1]) return 0;
    const minutes = Number(match[2]) * 60 + Number(match[3] ?? 0);
    return match[1] === "-" ? -minutes : minutes;
}

/** Instants (ms) within [from, from + 366 days) where the zone's UTC offset changes, to the minute. */
function offsetTransitions(timeZone: string, from: number): number[] {
    const formatter = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" });
    const day = 86_400_000;
    const transitions: number[] = [];
    let previous = offsetMinutes(formatter, from);
    for (let t = from + day; t <= from + 366 * day; t += day) {
        const current = offsetMinutes(formatter, t);
        if (current !== previous) {
            let lo = t - day;
            let hi = t;
            while (hi - lo > 60_000) {
                const mid = lo + Math.floor((hi - lo) / 2);
                if (offsetMinutes(formatter, mid) === previous) lo = mid;
                else hi = mid;
            }
            transitions.push(hi);
            previous = current;
        }
    }
    return transitions;
}

/**
 * The longest gap between two consecutive ticks of `schedule` in `timeZone`.
 *
 * Iterating a year of ticks with cron-parser takes tens of seconds, so this is analytical: a
 * schedule that leaves any hour or day without a tick has a gap of at least an hour (returned as
 * a lower bound, `exact: false`). Otherwise it ticks in every hour of every day and the wall-clock
 * gaps are the gaps between its minutes; the only place real time differs from wall-clock time is
 * a UTC-offset change, so the ticks within two hours of every change in the next 366 days are
 * iterated with cron-parser, whose handling of skipped and repeated times decides those gaps.
 */
export function longestTickGap(schedule: string, timeZone: string, from: Date = new Date()): TickGap {
    const syntax = cronSyntaxProblem(schedule);
    if (syntax) throw new Error(`"${schedule}" is not a valid schedule: ${syntax}`);
    const fields = parse(schedule, timeZone).fields;
    const months = covers(fields.month.values, 1, 12);
    const domFull = covers(fields.dayOfMonth.values, 1, 31);
    const dowFull = covers(fields.dayOfWeek.values, 0, 6, true);
    // cron's day rule: both fields restricted means either may match; one wildcard means the other decides.
    const everyDay =
        months &&
        (fields.dayOfMonth.isWildcard && fields.dayOfWeek.isWildcard
            ? true
            : fields.dayOfMonth.isWildcard
              ? dowFull
              : fields.dayOfWeek.isWildcard
                ? domFull
                : domFull || dowFull);
    if (!everyDay) return { seconds: 86_400, exact: false };
    if (!covers(fields.hour.values, 0, 23)) return { seconds: 3_600, exact: false };

    const minutes = [...fields.minute.values].map(Number).sort((a, b) => a - b);
    let longest = 0;
    for (const [i, m] of minutes.entries()) {
        const next = i + 1 < minutes.length ? minutes[i + 1]! : minutes[0]! + 60;
        longest = Math.max(longest, (next - m) * 60);
    }

    const window = 2 * 3_600_000;
    for (const transition of offsetTransitions(timeZone, from.getTime())) {
        const ticks = parse(schedule, timeZone, {
            currentDate: new Date(transition - window),
            endDate: new Date(transition + window),
        });
        let previous: number | undefined;
        while (ticks.hasNext()) {
            const tick = ticks.next().getTime();
            if (previous !== undefined) longest = Math.max(longest, Math.round((tick - previous) / 1000));
            previous = tick;
        }
    }
    return { seconds: longest, exact: true };
}

/** Thrown when the schedule leaves no room within the token's life; names the fix. */
export class ScheduleTooSparseError extends Error {
    constructor(
        readonly schedule: string,
        readonly gap: TickGap,
    ) {
        const gapText = `${gap.exact ? "" : "at least "}${Math.round(gap.seconds / 60)} min`;
        super(
            `ticks of "${schedule}" can be ${gapText} apart; with ${marginHeadroomSeconds / 60} min head room the refresh margin ` +
                `(${gap.seconds + marginHeadroomSeconds} s) would reach the token's ${accessTokenLifetimeSeconds / 60} min life, ` +
                `so a token could expire between two ticks. Use a schedule that ticks at least every ` +
                `${(accessTokenLifetimeSeconds - marginHeadroomSeconds) / 60 - 1} min, such as "${defaultSchedule}"`,
        );
        this.name = "ScheduleTooSparseError";
    }
}

/**
 * REFRESH_MARGIN_SECONDS for the refresher: the longest gap between two ticks plus ten minutes.
 * `*\/10 * * * *` gives 1200. Throws {@link ScheduleTooSparseError} when the margin would be one
 * hour or more, and a plain Error when the schedule is not valid unix-cron or the zone is unknown.
 */
export function refreshMarginSeconds(schedule: string, timeZone: string, from: Date = new Date()): number {
    const gap = longestTickGap(schedule, timeZone, from);
    const margin = gap.seconds + marginHeadroomSeconds;
    if (!gap.exact || margin >= accessTokenLifetimeSeconds) throw new ScheduleTooSparseError(schedule, gap);
    return margin;
}
