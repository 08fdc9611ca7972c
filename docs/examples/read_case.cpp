// read_case.cpp: judge a C++ implementation with a posref golden case.
//
// Standalone C++17, no third-party libraries:
//
//     g++ -std=c++17 -O2 -o read_case docs/examples/read_case.cpp
//     ./read_case golden/cases/<rope_angles case>.safetensors --base 10000
//     ./read_case golden/cases/apply_rope.half.hard_positions.safetensors --judge-rope 500000 half
//
// The program computes a spec function itself from the case's inputs and
// judges the result exactly as `posref check` does, with the error budgets
// stored in the case (never with a tolerance of its own):
//
//   (default)                 a `rope_angles` case: output[..., i] =
//                             positions[...] * base^(-2i/dim), in double
//                             precision (dim = 2 * the output's last axis);
//                             --base B gives the case's "base" (default 10000)
//   --judge-rope BASE LAYOUT  an `apply_rope` case with only "base" and
//                             "layout" (half or interleaved) among its
//                             params, computed the way libraries do:
//                             frequencies, angles, cos and sin in float32,
//                             the rotation in the dtype under test
//   --broken-base B           with --judge-rope: use B instead of BASE for
//                             the frequencies, a deliberate bug to see fail
//   --dtype D                 the dtype under test: float64 (the default,
//                             not with --judge-rope), float32 (default with
//                             --judge-rope), float16 or bfloat16
//   --write-output FILE       also write the computed output to FILE as a
//                             safetensors file (tensor "output", F64)
//
// What the case provides for dtype D, as posref's runner reads it:
//   inputs    D.inputs.<name> when present, else inputs.<name> (rounded to
//             D here when floating)
//   expected  D.outputs.<name> when present, else outputs.<name> (float64)
//   budget    budgets.D.<name>: the allowed |actual - expected| of every
//             element (error cases have none)
//
// Exit status: 0 the output passes, 1 it fails, 2 the file or the command
// line is unusable.
//
// File format (https://github.com/huggingface/safetensors): 8-byte
// little-endian header length N, N bytes of JSON
//     {"<name>":{"dtype":"F64","shape":[2,3],"data_offsets":[begin,end]},...}
// then the data section; tensor bytes are little-endian at
// [8 + N + begin, 8 + N + end).

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Shape = std::vector<std::uint64_t>;

struct Tensor {
    std::string dtype;           // safetensors code: F64, F32, F16, BF16, I64, ...
    Shape shape;
    std::vector<double> values;  // every element converted to double (exact)
};

std::uint64_t read_le(const unsigned char* p, int nbytes) {
    std::uint64_t v = 0;
    for (int k = nbytes - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
}

double half_to_double(std::uint16_t h) {
    const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) {
        v = std::ldexp(mantissa, -24);  // zero or subnormal
    } else if (exponent == 31) {
        v = mantissa ? std::nan("") : INFINITY;
    } else {
        v = std::ldexp(mantissa + 1024, exponent - 25);
    }
    return sign ? -v : v;
}

double element(const std::string& dtype, const unsigned char* p) {
    if (dtype == "F64") {
        std::uint64_t bits = read_le(p, 8);
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
    }
    if (dtype == "F32" || dtype == "BF16") {
        std::uint32_t bits = dtype == "F32" ? static_cast<std::uint32_t>(read_le(p, 4))
                                            : static_cast<std::uint32_t>(read_le(p, 2)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    if (dtype == "F16") return half_to_double(static_cast<std::uint16_t>(read_le(p, 2)));
    if (dtype == "I64") return static_cast<double>(static_cast<std::int64_t>(read_le(p, 8)));
    if (dtype == "I32") return static_cast<double>(static_cast<std::int32_t>(read_le(p, 4)));
    if (dtype == "BOOL") return p[0] ? 1.0 : 0.0;
    throw std::runtime_error("unsupported dtype " + dtype);
}

int itemsize(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64") return 8;
    if (dtype == "F32" || dtype == "I32") return 4;
    if (dtype == "F16" || dtype == "BF16") return 2;
    if (dtype == "BOOL") return 1;
    throw std::runtime_error("unsupported dtype " + dtype);
}

class SafetensorsFile {
  public:
    explicit SafetensorsFile(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open " + path);
        bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (bytes_.size() < 8) throw std::runtime_error(path + ": file shorter than 8 bytes");
        const std::uint64_t n = read_le(bytes_.data(), 8);
        if (n < 2 || n > 100000000 || n > bytes_.size() - 8)
            throw std::runtime_error(path + ": header length " + std::to_string(n) + " out of bounds (file has " +
                                     std::to_string(bytes_.size()) + " bytes)");
        header_.assign(reinterpret_cast<const char*>(bytes_.data()) + 8, n);
        data_start_ = 8 + n;
        // The tensors tile the data section, so the largest end offset is its size.
        std::uint64_t data_end = 0;
        const std::string key = "\"data_offsets\"";
        for (std::size_t at = header_.find(key); at != std::string::npos; at = header_.find(key, at + 1)) {
            const Shape offsets = int_list_field(header_.substr(at), "data_offsets");
            if (offsets.size() != 2) throw std::runtime_error(path + ": bad data_offsets");
            data_end = std::max(data_end, offsets[1]);
        }
        if (data_end != bytes_.size() - data_start_)
            throw std::runtime_error(path + ": data section has " + std::to_string(bytes_.size() - data_start_) +
                                     " bytes, the header describes " + std::to_string(data_end) +
                                     " (truncated or corrupt file)");
    }

    bool has(const std::string& name) const { return find_entry(name) != std::string::npos; }

    Tensor get(const std::string& name) const {
        const std::size_t k = find_entry(name);
        if (k == std::string::npos) throw std::runtime_error("no tensor named " + name);
        const std::size_t end = header_.find('}', k);
        if (end == std::string::npos) throw std::runtime_error(name + ": unterminated header entry");
        const std::string entry = header_.substr(k, end - k + 1);
        Tensor t;
        t.dtype = string_field(entry, "dtype");
        t.shape = int_list_field(entry, "shape");
        const Shape offsets = int_list_field(entry, "data_offsets");
        if (offsets.size() != 2 || offsets[0] > offsets[1]) throw std::runtime_error(name + ": bad data_offsets");
        std::uint64_t count = 1;
        for (std::uint64_t d : t.shape) {
            if (d != 0 && count > (std::uint64_t{1} << 40) / d) throw std::runtime_error(name + ": shape too large");
            count *= d;
        }
        const int size = itemsize(t.dtype);
        if (offsets[1] - offsets[0] != count * size) throw std::runtime_error(name + ": size does not match shape");
        if (offsets[1] > bytes_.size() - data_start_) throw std::runtime_error(name + ": data out of bounds");
        const unsigned char* p = bytes_.data() + data_start_ + offsets[0];
        t.values.resize(count);
        for (std::uint64_t i = 0; i < count; ++i) t.values[i] = element(t.dtype, p + i * size);
        return t;
    }

  private:
    // Where the JSON object that is the value of key `name` starts, or npos.
    std::size_t find_entry(const std::string& name) const {
        const std::string quoted = "\"" + name + "\"";
        for (std::size_t at = header_.find(quoted); at != std::string::npos; at = header_.find(quoted, at + 1)) {
            std::size_t k = skip_space(at + quoted.size());
            if (k >= header_.size() || header_[k] != ':') continue;
            k = skip_space(k + 1);
            if (k < header_.size() && header_[k] == '{') return k;
        }
        return std::string::npos;
    }

    std::size_t skip_space(std::size_t k) const {
        while (k < header_.size() && std::isspace(static_cast<unsigned char>(header_[k]))) ++k;
        return k;
    }

    static std::size_t value_start(const std::string& entry, const std::string& key) {
        const std::size_t at = entry.find("\"" + key + "\"");
        if (at == std::string::npos) throw std::runtime_error("entry lacks " + key);
        const std::size_t colon = entry.find(':', at);
        if (colon == std::string::npos) throw std::runtime_error("entry lacks a value for " + key);
        return entry.find_first_not_of(" \t\r\n", colon + 1);
    }

    static std::string string_field(const std::string& entry, const std::string& key) {
        const std::size_t open = value_start(entry, key);
        const std::size_t close = open == std::string::npos ? open : entry.find('"', open + 1);
        if (open == std::string::npos || entry[open] != '"' || close == std::string::npos)
            throw std::runtime_error(key + " is not a string");
        return entry.substr(open + 1, close - open - 1);
    }

    static Shape int_list_field(const std::string& entry, const std::string& key) {
        const std::size_t open = value_start(entry, key);
        const std::size_t close = open == std::string::npos ? open : entry.find(']', open);
        if (open == std::string::npos || entry[open] != '[' || close == std::string::npos)
            throw std::runtime_error(key + " is not a list");
        Shape out;
        std::string digits;
        for (std::size_t k = open + 1; k <= close; ++k) {
            const char c = entry[k];
            if (c >= '0' && c <= '9') {
                digits += c;
            } else if (c == ',' || c == ']') {
                if (digits.empty() || digits.size() > 15) {
                    if (c == ']' && digits.empty() && out.empty()) break;  // []
                    throw std::runtime_error(key + " holds a bad integer");
                }
                out.push_back(std::stoull(digits));
                digits.clear();
            } else if (!std::isspace(static_cast<unsigned char>(c))) {
                throw std::runtime_error(key + " holds a bad character");
            }
        }
        return out;
    }

    std::vector<unsigned char> bytes_;
    std::string header_;
    std::size_t data_start_ = 0;
};

// Round to the nearest value of `dtype` (ties to even), as a cast does.
double round_to(double v, const std::string& dtype) {
    if (dtype == "float64" || !std::isfinite(v) || v == 0) return v;
    if (dtype == "float32") return static_cast<float>(v);
    const bool half = dtype == "float16";
    const int bits = half ? 11 : 8, min_exponent = half ? -13 : -125;  // significand bits, frexp of the smallest normal
    const double largest = half ? 65504.0 : 0x1.fep127;
    int e;
    std::frexp(v, &e);
    const int spacing = std::max(e, min_exponent) - bits;  // log2 of the spacing at v (subnormals included)
    const double r = std::ldexp(std::nearbyint(std::ldexp(v, -spacing)), spacing);
    return std::fabs(r) > largest ? std::copysign(INFINITY, v) : r;
}

bool is_floating(const Tensor& t) {
    return t.dtype == "F64" || t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16";
}

// The input `name` an implementation under test in `dtype` receives.
Tensor input_for(const SafetensorsFile& file, const std::string& name, const std::string& dtype) {
    if (file.has(dtype + ".inputs." + name)) return file.get(dtype + ".inputs." + name);
    Tensor t = file.get("inputs." + name);
    if (is_floating(t))
        for (double& v : t.values) v = round_to(v, dtype);
    return t;
}

std::string format_shape(const Shape& shape) {  // as Python writes a tuple
    std::string s = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

std::string format_index(std::uint64_t flat, const Shape& shape) {
    Shape index(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
        index[k] = flat % shape[k];
        flat /= shape[k];
    }
    return format_shape(index);
}

std::string number(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", v);
    return text;
}

// [judge]
// The rule of posref.conformance.compare.compare, for one output:
//  1. the shapes must be equal;
//  2. where the expected value is finite, the actual one must be finite
//     (the first offending element, in row-major order, is reported);
//  3. where the expected value is not finite (the -inf of a causal mask),
//     the actual one must be the same value;
//  4. every element must satisfy |actual - expected| <= budget.  Its share of
//     the budget is |actual - expected| / budget (0 when the error is 0, inf
//     when only the budget is); the worst element is the first one with the
//     largest share, and the output passes when that share is at most 1.
// Prints the verdict and the worst element; returns the exit status.
int judge(const std::vector<double>& actual, const Shape& actual_shape, const Tensor& expected,
          const Tensor& budget, const std::string& what) {
    if (budget.shape != expected.shape) throw std::runtime_error(what + ": budget and expected output differ in shape");
    std::cout << "judging " << what << ": " << expected.values.size() << " elements\n";
    if (actual_shape != expected.shape) {
        std::cout << "FAIL: output has shape " << format_shape(actual_shape) << ", expected "
                  << format_shape(expected.shape) << "\n";
        return 1;
    }
    const std::vector<double>& e = expected.values;
    const std::vector<double>& b = budget.values;
    const std::size_t n = e.size();
    for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t k = 0; k < n; ++k) {
            const bool bad = pass == 0 ? std::isfinite(e[k]) && !std::isfinite(actual[k])
                                       : !std::isfinite(e[k]) && !(actual[k] == e[k]);
            if (!bad) continue;
            std::cout << "worst element " << format_index(k, expected.shape) << ": actual " << number(actual[k])
                      << ", expected " << number(e[k]) << ", budget " << number(b[k]) << ", share inf\n"
                      << "FAIL: " << (pass == 0 ? "non-finite output " : "output ") << number(actual[k])
                      << " at index " << format_index(k, expected.shape) << ", expected " << number(e[k]) << "\n";
            return 1;
        }
    }
    if (n == 0) {
        std::cout << "PASS: empty output\n";
        return 0;
    }
    std::size_t worst = 0, over = 0;
    double worst_share = -1.0;
    for (std::size_t k = 0; k < n; ++k) {
        const double error = std::isfinite(e[k]) ? std::fabs(actual[k] - e[k]) : 0.0;
        const double share = error == 0 ? 0.0 : error / b[k];  // x/0 -> inf, x/nan -> nan
        if (!(share <= 1.0)) ++over;
        if (std::isnan(worst_share)) continue;  // a NaN share is the worst, as for numpy.argmax
        if (std::isnan(share) || share > worst_share) {
            worst_share = share;
            worst = k;
        }
    }
    const std::string index = format_index(worst, expected.shape);
    const double error = std::fabs(actual[worst] - e[worst]);
    std::cout << "worst element " << index << ": actual " << number(actual[worst]) << ", expected "
              << number(e[worst]) << ", |actual - expected| " << number(error) << ", budget "
              << number(b[worst]) << ", share " << number(worst_share) << "\n";
    if (worst_share <= 1.0) {
        std::cout << "PASS: every |actual - expected| <= budget (worst share " << number(worst_share) << ")\n";
        return 0;
    }
    std::cout << "FAIL: error " << number(error) << " at index " << index << " exceeds the budget "
              << number(b[worst]) << " (" << number(worst_share) << "x); " << over << " of " << n
              << " elements exceed their budget\n";
    return 1;
}
// [judge end]

// rope_angles in double precision: output[..., i] = positions[...] * base^(-2i/dim).
std::vector<double> rope_angles(const Tensor& positions, std::uint64_t dim, double base) {
    std::vector<double> out;
    for (double p : positions.values)
        for (std::uint64_t i = 0; i < dim / 2; ++i) out.push_back(p * std::pow(base, (-2.0 * i) / dim));
    return out;
}

// [rope]
// apply_rope the way PyTorch libraries compute it (Hugging Face rotate_half,
// vLLM, ...): inv_freq_i = 1 / base^(2i/D) in float32, angle = float(p) *
// inv_freq_i in float32, cos and sin in float32 and rounded to the dtype
// under test, then x_a cos - x_b sin and x_b cos + x_a sin with every product
// and sum rounded to that dtype.  Pair i is channels (i, i + D/2) in the
// half layout, (2i, 2i + 1) in the interleaved one.  positions broadcast to
// x.shape[:-1], aligned on the right.
std::vector<double> apply_rope(const Tensor& x, const Tensor& positions, float base, bool interleaved,
                               const std::string& dtype) {
    if (x.shape.empty() || x.shape.back() == 0 || x.shape.back() % 2) throw std::runtime_error("x: D must be even");
    const Shape lead(x.shape.begin(), x.shape.end() - 1);
    const Shape& pshape = positions.shape;
    bool fits = pshape.size() <= lead.size();
    for (std::size_t k = 1; fits && k <= pshape.size(); ++k)
        fits = pshape[pshape.size() - k] == 1 || pshape[pshape.size() - k] == lead[lead.size() - k];
    if (!fits) throw std::runtime_error("positions do not broadcast to x.shape[:-1]");
    const std::uint64_t dim = x.shape.back(), half = dim / 2;
    auto round = [&](float v) { return static_cast<float>(round_to(v, dtype)); };
    std::vector<float> inv_freq(half);
    for (std::uint64_t i = 0; i < half; ++i)
        inv_freq[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
    std::vector<double> y(x.values.size());
    for (std::uint64_t row = 0; row < x.values.size() / dim; ++row) {
        std::uint64_t p_index = 0, stride = 1, rest = row;  // the position of this row
        for (std::size_t k = 1; k <= pshape.size(); ++k) {
            const std::uint64_t i = rest % lead[lead.size() - k];
            rest /= lead[lead.size() - k];
            if (pshape[pshape.size() - k] != 1) p_index += i * stride;
            stride *= pshape[pshape.size() - k];
        }
        const float p = static_cast<float>(positions.values[p_index]);
        for (std::uint64_t i = 0; i < half; ++i) {
            const float angle = p * inv_freq[i];
            const float c = round(std::cos(angle)), s = round(std::sin(angle));
            const std::uint64_t a = row * dim + (interleaved ? 2 * i : i), b = a + (interleaved ? 1 : half);
            const float xa = static_cast<float>(x.values[a]), xb = static_cast<float>(x.values[b]);
            y[a] = round(round(xa * c) - round(xb * s));
            y[b] = round(round(xb * c) + round(xa * s));
        }
    }
    return y;
}
// [rope end]

void write_output(const std::string& path, const std::vector<double>& values, const Shape& shape) {
    std::string header = "{\"output\":{\"dtype\":\"F64\",\"shape\":[";
    for (std::size_t k = 0; k < shape.size(); ++k) header += (k ? "," : "") + std::to_string(shape[k]);
    header += "],\"data_offsets\":[0," + std::to_string(8 * values.size()) + "]}}";
    header.append((8 - header.size() % 8) % 8, ' ');  // the data section starts 8-aligned
    std::string bytes;
    auto put = [&](std::uint64_t v) {
        for (int k = 0; k < 8; ++k) bytes += static_cast<char>((v >> (8 * k)) & 0xff);
    };
    put(header.size());
    bytes += header;
    for (double v : values) {
        std::uint64_t bits;
        std::memcpy(&bits, &v, 8);
        put(bits);
    }
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

double parse_base(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v > 1.0) || !std::isfinite(v))
        throw std::runtime_error("base must be a number greater than 1, got " + text);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::cerr << "usage: " << argv[0] << " CASE.safetensors [--base B] [--dtype D] [--write-output FILE]\n"
                  << "       " << argv[0] << " CASE.safetensors --judge-rope BASE LAYOUT [--broken-base B]"
                  << " [--dtype D] [--write-output FILE]\n";
        return 2;
    }
    try {
        double base = 10000.0, broken_base = 0.0;
        std::string dtype, layout, out_path;
        bool rope = false;
        for (int k = 2; k < argc; ++k) {
            const std::string option = argv[k];
            auto value = [&]() -> std::string {
                if (k + 1 >= argc) throw std::runtime_error("option " + option + " needs a value");
                return argv[++k];
            };
            if (option == "--base") {
                base = parse_base(value());
            } else if (option == "--judge-rope") {
                rope = true;
                base = parse_base(value());
                layout = value();
            } else if (option == "--broken-base") {
                broken_base = parse_base(value());
            } else if (option == "--dtype") {
                dtype = value();
            } else if (option == "--write-output") {
                out_path = value();
            } else {
                throw std::runtime_error("unknown option " + option);
            }
        }
        if (dtype.empty()) dtype = rope ? "float32" : "float64";
        if (dtype != "float64" && dtype != "float32" && dtype != "float16" && dtype != "bfloat16")
            throw std::runtime_error("unknown dtype " + dtype + " (float64, float32, float16 or bfloat16)");
        if (rope && dtype == "float64") throw std::runtime_error("--judge-rope computes in float32 or lower");
        if (rope && layout != "half" && layout != "interleaved")
            throw std::runtime_error("layout must be half or interleaved, got " + layout);
        if (broken_base != 0.0 && !rope) throw std::runtime_error("--broken-base needs --judge-rope");

        const SafetensorsFile file(argv[1]);
        const std::string rounded = dtype + ".outputs.output";
        const std::string expected_name = file.has(rounded) ? rounded : "outputs.output";
        const std::string budget_name = "budgets." + dtype + ".output";
        if (!file.has(budget_name))
            throw std::runtime_error("the case has no " + budget_name + " (an error case, a corpus older than "
                                     "schema version 2, or inputs that do not fit " + dtype + ")");
        const Tensor expected = file.get(expected_name), budget = file.get(budget_name);

        std::vector<double> actual;
        Shape shape;
        if (rope) {
            const Tensor x = input_for(file, "x", dtype), positions = input_for(file, "positions", dtype);
            const double used = broken_base != 0.0 ? broken_base : base;
            std::cout << "apply_rope, layout " << layout << ", base " << number(used)
                      << (broken_base != 0.0 ? " (deliberately broken: the case's base is " + number(base) + ")" : "")
                      << ", angles in float32, rotation in " << dtype << "\n";
            actual = apply_rope(x, positions, static_cast<float>(used), layout == "interleaved", dtype);
            shape = x.shape;
        } else {
            const Tensor positions = input_for(file, "positions", dtype);
            if (positions.shape.size() + 1 != expected.shape.size() ||
                !std::equal(positions.shape.begin(), positions.shape.end(), expected.shape.begin()))
                throw std::runtime_error("not a rope_angles case: output shape is not positions.shape + (dim/2,)");
            std::cout << "rope_angles, base " << number(base) << ", in double precision\n";
            actual = rope_angles(positions, 2 * expected.shape.back(), base);
            shape = expected.shape;
        }
        if (!out_path.empty()) write_output(out_path, actual, shape);
        return judge(actual, shape, expected, budget, "output in " + dtype + " against " + expected_name +
                                                          " with " + budget_name);
    } catch (const std::exception& error) {
        std::cerr << "read_case: " << error.what() << "\n";
        return 2;
    }
}
