// forecast: the next value of a real time series from a window of the past, by an LSTM (or a
// causal 1-D convolution), against two honest baselines: the last value (tomorrow as today) and a
// linear model on the same window (least squares, fitted on the training part). Three series
// from Debian's python3-vega-datasets: Apple's monthly stock price 2000-2010, Seattle's daily
// maximum temperature 2012-2015 (from four daily measurements), and Seattle's hourly temperature
// in 2010. Each is split in time order (70% train, 15% validation, 15% test), scaled with
// statistics of the training part only, and scored on the test part in the series' own units.
import ArgumentParser
import Datasets
import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import _AppSupport

enum SeriesName: String, ExpressibleByArgument, CaseIterable {
    case stocks, weather, temps
}

enum ForecastModel: String, ExpressibleByArgument, CaseIterable {
    case lstm, conv1d
}

/// One series: the input features over time `[N, F]`, the row of the value to forecast, and how
/// to window it.
struct Series {
    var name: SeriesName
    var title: String
    var unit: String
    var features: Tensor
    var target: Int
    var window: Int
    var epochs: Int
}

struct SeriesResult: Encodable {
    var series: String
    var title: String
    var points: Int
    var window: Int
    var testPoints: Int
    var model: String
    var rmse: [String: Double]
    var mae: [String: Double]
    var winner: String
    var epochs: Int
    var secondsPerEpoch: Double
}

struct Report: Encodable {
    var app = "forecast"
    var results: [SeriesResult]
    var files: [String]
}

struct Forecast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forecast the next value of stock prices and Seattle weather with an LSTM or a causal Conv1D, against the last value and a linear model.",
        discussion: "Data: the CSV files of Debian's python3-vega-datasets (Tools/install-deps.sh installs it), or --data DIR holding stocks.csv, seattle-weather.csv and seattle-temps.csv.")

    @Option(help: "The folder holding stocks.csv, seattle-weather.csv and seattle-temps.csv.")
    var data = "/usr/lib/python3/dist-packages/vega_datasets/_data"

    @Option(help: "Which series: all, or one of \(SeriesName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var series = "all"

    @Option(help: "The network: lstm (LSTM(32), Dense(1)) or conv1d (two causal Conv1D(32, 3) layers, dilations 1 and 2, global average, Dense(1)). Either forecasts the change from the window's last value.")
    var model: ForecastModel = .lstm

    @Option(help: "Epochs (default per series: 60 for the monthly prices, 30 daily, 8 hourly); early stopping on the validation loss keeps the best.")
    var epochs: Int?

    @Option(help: "The seed of the initial weights and the batch order.")
    var seed: UInt64 = 1

    @Option(help: "A folder for forecast.png (truth, forecast and baselines over each test period).")
    var output: String?

    @Flag(help: "Print only one JSON line with the results.")
    var json = false

    func validate() throws {
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        if series != "all" && SeriesName(rawValue: series) == nil {
            throw ValidationError("--series is all, stocks, weather or temps, not \(series).")
        }
    }

    func run() throws {
        try reportingFailures(of: "forecast") {
            let names = series == "all" ? SeriesName.allCases : [SeriesName(rawValue: series)!]
            var results: [SeriesResult] = []
            var panels: [(title: String, truth: [Double], forecast: [Double], last: [Double], linear: [Double])] = []
            for name in names {
                let s = try load(name)
                let (result, panel) = try forecast(s)
                results.append(result)
                panels.append((s.title, panel.truth, panel.forecast, panel.last, panel.linear))
                if !json { printResult(result, unit: s.unit) }
            }
            var files: [String] = []
            if let output {
                try makeOutputDirectory(output)
                let path = output + "/forecast.png"
                try drawPanels(panels, to: path)
                files.append(path)
                if !json { print("wrote \(path) (white: truth, orange: \(model.rawValue), blue: last value, green: linear)") }
            }
            if json { try printJSONLine(Report(results: results, files: files)) }
        }
    }

    // MARK: Data

    func load(_ name: SeriesName) throws -> Series {
        func table(_ file: String) throws -> CSVTable {
            let path = data + "/" + file
            do { return try CSVTable(contentsOf: path) } catch {
                throw DemoFailure("cannot read \(path): \(error)\ninstall python3-vega-datasets (Tools/install-deps.sh) or pass --data DIR")
            }
        }
        switch name {
        case .stocks:
            let apple = try table("stocks.csv").rows(where: "symbol", equals: "AAPL")
            let prices = try apple.numericMatrix(columns: ["price"])
            return Series(name: name, title: "AAPL monthly price", unit: "USD", features: prices, target: 0, window: 12,
                          epochs: epochs ?? 60)
        case .weather:
            let days = try table("seattle-weather.csv").numericMatrix(columns: ["temp_max", "temp_min", "precipitation", "wind"])
            return Series(name: name, title: "Seattle daily maximum temperature", unit: "°C", features: days, target: 0,
                          window: 14, epochs: epochs ?? 30)
        case .temps:
            let hours = try table("seattle-temps.csv").numericMatrix(columns: ["temp"])
            return Series(name: name, title: "Seattle hourly temperature", unit: "°F", features: hours, target: 0, window: 24,
                          epochs: epochs ?? 8)
        }
    }

    // MARK: Forecasting

    func forecast(_ s: Series) throws -> (SeriesResult, (truth: [Double], forecast: [Double], last: [Double], linear: [Double])) {
        let n = s.features.shape[0], f = s.features.shape[1], w = s.window
        // Window i covers rows i..<i+w and forecasts the target at row i+w.
        let windows = n - w
        let split = try timeOrderedSplit(count: windows, trainFraction: 0.7, validationFraction: 0.15)
        // Scale with statistics of the rows the training windows see (inputs and targets).
        var scaler = StandardScaler()
        try scaler.fit(s.features.slice(0..<(split.train.upperBound + w)))
        let scaled = try scaler.transform(s.features)
        let targetColumn = scaled.scalars.enumerated().compactMap { $0.offset % f == s.target ? $0.element : nil }
        // The network forecasts the change from the window's last value (in the scaled units):
        // a level outside the training range (a stock that keeps rising) is then no harder than
        // one inside it. Row r holds the change from row r - 1 to row r (0 for row 0).
        let changes = targetColumn.indices.map { $0 == 0 ? 0 : targetColumn[$0] - targetColumn[$0 - 1] }
        let targets = Tensor(shape: [n, 1], scalars: changes)
        // Keras' convention: the window starting at row i has target row i. Window i reads rows
        // i..<i+w of the inputs (the last input row is n - 2) and forecasts row i + w, so the
        // target rows are the series shifted by w, padded where no window starts.
        let inputs = scaled.slice(0..<(n - 1))
        let shifted = padded(targets.slice(w..<n), to: n - 1)
        func windowsOf(_ range: Range<Int>, shuffle: Bool) throws -> TimeseriesWindows {
            try TimeseriesWindows(data: inputs, targets: .values(shifted),
                                  sequenceLength: w, batchSize: 32, shuffle: shuffle, seed: seed,
                                  startIndex: range.lowerBound, endIndex: range.upperBound + w - 1)
        }
        let train = try windowsOf(split.train, shuffle: true)
        let validation = try windowsOf(split.validation, shuffle: false)
        let test = try windowsOf(split.test, shuffle: false)

        let network = makeModel(window: w, features: f)
        network.compile(optimizer: Adam(learningRate: 3e-3), loss: MeanSquaredError())
        let timer = EpochTimer(label: s.name.rawValue, quiet: true)
        let stopping = EarlyStopping(monitor: "val_loss", patience: 8, restoreBestWeights: true)
        // The library's progress bar on a terminal (and not with --json); nothing per epoch otherwise.
        try network.fit(train, epochs: s.epochs, validationData: validation, seed: seed,
                        callbacks: [timer, stopping] + (terminalProgressBar(json: json).map { [$0] } ?? []), verbose: 0)

        // Everything below in the series' own units.
        let mean = scaler.mean![s.target], deviation = scaler.standardDeviation![s.target]
        func unscale(_ v: Float) -> Double { Double(v) * deviation + mean }
        let raw = s.features.scalars
        func value(_ row: Int) -> Double { Double(raw[row * f + s.target]) }
        let testRows = Array(split.test)
        let truth = testRows.map { value($0 + w) }
        let predicted = zip(testRows, try network.predict(test).scalars).map { row, change in
            value(row + w - 1) + Double(change) * deviation
        }
        let last = testRows.map { value($0 + w - 1) }
        let linearModel = try LinearForecaster(fitting: Array(split.train).map { i in windowFeatures(scaled, i, w) },
                                               targets: Array(split.train).map { Double(targetColumn[$0 + w]) })
        let linear = testRows.map { unscale(Float(linearModel.predict(windowFeatures(scaled, $0, w)))) }

        var rmse: [String: Double] = [:], mae: [String: Double] = [:]
        for (key, values) in [(model.rawValue, predicted), ("last_value", last), ("linear", linear)] {
            let errors = zip(values, truth).map { $0 - $1 }
            rmse[key] = rounded((errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot(), 4)
            mae[key] = rounded(errors.map(abs).reduce(0, +) / Double(errors.count), 4)
        }
        let winner = rmse.min { $0.value < $1.value }!.key
        let result = SeriesResult(series: s.name.rawValue, title: s.title, points: n, window: w, testPoints: truth.count,
                                  model: model.rawValue, rmse: rmse, mae: mae, winner: winner, epochs: timer.seconds.count,
                                  secondsPerEpoch: rounded(timer.seconds.isEmpty ? 0 : median(timer.seconds), 3))
        return (result, (truth, predicted, last, linear))
    }

    func makeModel(window w: Int, features f: Int) -> Sequential {
        switch model {
        case .lstm:
            return Sequential(inputShape: [w, f]) {
                LSTM(32)
                Dense(1)
            }
        case .conv1d:
            return Sequential(inputShape: [w, f]) {
                Conv1D(filters: 32, kernelSize: 3, padding: .causal, activation: .relu)
                Conv1D(filters: 32, kernelSize: 3, padding: .causal, dilation: 2, activation: .relu)
                GlobalAveragePool1D()
                Dense(1)
            }
        }
    }

    /// The scaled rows `i..<i+w`, all features, flattened: the linear baseline's input.
    func windowFeatures(_ scaled: Tensor, _ i: Int, _ w: Int) -> [Double] {
        let f = scaled.shape[1]
        return scaled.scalars[(i * f)..<((i + w) * f)].map(Double.init)
    }

    /// `t` `[m, 1]` followed by zero rows up to `rows` (targets of rows no window starts at).
    func padded(_ t: Tensor, to rows: Int) -> Tensor {
        Tensor(shape: [rows, 1], scalars: t.scalars + [Float](repeating: 0, count: rows - t.shape[0]))
    }

    // MARK: Report

    func printResult(_ r: SeriesResult, unit: String) {
        print("\(r.title): \(r.points) points, window \(r.window), \(r.testPoints) test forecasts, "
              + "\(r.epochs) epochs at \(String(format: "%.2f", r.secondsPerEpoch)) s")
        for key in [model.rawValue, "linear", "last_value"] {
            let label = key.padding(toLength: 11, withPad: " ", startingAt: 0)
            print("  " + label + String(format: "RMSE %9.3f ", r.rmse[key]!) + unit + String(format: "   MAE %9.3f ", r.mae[key]!) + unit)
        }
        let verdict = r.winner == model.rawValue
            ? "the \(model.rawValue) wins"
            : "the \(r.winner == "linear" ? "linear model" : "last value") wins; the \(model.rawValue) does not beat it here"
        print("  => \(verdict)")
    }

    func drawPanels(_ panels: [(title: String, truth: [Double], forecast: [Double], last: [Double], linear: [Double])],
                    to path: String) throws {
        let width = 900, panelHeight = 220, gap = 12
        var canvas = PictureCanvas(height: panels.count * (panelHeight + gap) + gap, width: width + 2 * gap, background: (0.08, 0.08, 0.1))
        for (k, p) in panels.enumerated() {
            canvas.plot([(p.last, (0.35, 0.55, 0.95)), (p.linear, (0.3, 0.8, 0.4)), (p.truth, (0.95, 0.95, 0.95)),
                         (p.forecast, (1.0, 0.55, 0.1))],
                        top: gap + k * (panelHeight + gap), left: gap, height: panelHeight, width: width,
                        title: p.title + " (test period)", names: ["last value", "linear", "truth", model.rawValue])
        }
        try canvas.writePNG(to: path)
    }
}

/// Least squares with an intercept, `y ≈ w·x + b`, solved in Float64 through the normal
/// equations with a tiny ridge (1e-6) so that constant or collinear features stay solvable.
struct LinearForecaster {
    let weights: [Double]

    init(fitting rows: [[Double]], targets: [Double]) throws {
        guard let d = rows.first.map({ $0.count + 1 }), rows.count >= d else {
            throw DemoFailure("the linear baseline needs more training windows than features")
        }
        var a = [Double](repeating: 0, count: d * d), b = [Double](repeating: 0, count: d)
        for (row, y) in zip(rows, targets) {
            let x = row + [1]
            for i in 0..<d {
                b[i] += x[i] * y
                for j in 0..<d { a[i * d + j] += x[i] * x[j] }
            }
        }
        for i in 0..<d { a[i * d + i] += 1e-6 * Double(rows.count) }
        // Gaussian elimination with partial pivoting.
        for c in 0..<d {
            let pivot = (c..<d).max { abs(a[$0 * d + c]) < abs(a[$1 * d + c]) }!
            if pivot != c {
                for j in 0..<d { a.swapAt(c * d + j, pivot * d + j) }
                b.swapAt(c, pivot)
            }
            let p = a[c * d + c]
            guard abs(p) > 1e-12 else { throw DemoFailure("the linear baseline's equations are singular") }
            for r in (c + 1)..<d {
                let factor = a[r * d + c] / p
                if factor == 0 { continue }
                for j in c..<d { a[r * d + j] -= factor * a[c * d + j] }
                b[r] -= factor * b[c]
            }
        }
        var w = [Double](repeating: 0, count: d)
        for r in stride(from: d - 1, through: 0, by: -1) {
            var s = b[r]
            for j in (r + 1)..<d { s -= a[r * d + j] * w[j] }
            w[r] = s / a[r * d + r]
        }
        weights = w
    }

    func predict(_ row: [Double]) -> Double {
        zip(row + [1], weights).map(*).reduce(0, +)
    }
}

Forecast.main()
