// read_case.cpp: check a C++ implementation against a posref golden case.
//
// Standalone C++17, no third-party libraries:
//
//     g++ -std=c++17 -O2 -o read_case docs/examples/read_case.cpp
//     ./read_case golden/cases/<id>.safetensors --base 10000
//
// The case must be a `rope_angles` case: inputs `positions` (any shape)
// and `dim` (an integer scalar), output `output` of shape
// positions.shape + (dim / 2,).  The program reads those tensors from the
// safetensors file, computes
//
//     output[..., i] = positions[...] * base^(-2 i / dim)
//
// itself in double precision, and compares with the expected output:
// element k passes when |got - expected| <= atol + rtol * |expected|.
// `base` is the case's keyword parameter (manifest.json, "params"); it is
// given on the command line so that this example needs no full JSON parser.
//
// Options:
//     --base B       RoPE base (default 10000)
//     --variant V    use the rounded inputs V.inputs.positions and their
//                    expected outputs V.outputs.output (V = float32,
//                    float16 or bfloat16) instead of the float64 ones
//     --atol A       absolute tolerance (default 1e-12)
//     --rtol R       relative tolerance (default 1e-12)
//
// Exit status: 0 all elements within tolerance, 1 some element is not,
// 2 the file or the command line is unusable.
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
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Tensor {
    std::string dtype;
    std::vector<std::uint64_t> shape;
    std::vector<double> values;  // every element converted to double
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
        if (bytes_.size() < 8) throw std::runtime_error("file shorter than 8 bytes");
        const std::uint64_t n = read_le(bytes_.data(), 8);
        if (n < 2 || n > 100000000 || n > bytes_.size() - 8)
            throw std::runtime_error("header length " + std::to_string(n) + " out of bounds");
        header_.assign(reinterpret_cast<const char*>(bytes_.data()) + 8, n);
        data_start_ = 8 + n;
        // The tensors tile the data section, so the largest end offset is its size.
        std::uint64_t data_end = 0;
        const std::string key = "\"data_offsets\"";
        for (std::size_t at = header_.find(key); at != std::string::npos; at = header_.find(key, at + 1)) {
            const std::vector<std::uint64_t> offsets = int_list_field(header_.substr(at), "data_offsets");
            if (offsets.size() != 2) throw std::runtime_error("bad data_offsets");
            data_end = std::max(data_end, offsets[1]);
        }
        if (data_end != bytes_.size() - data_start_)
            throw std::runtime_error("data section has " + std::to_string(bytes_.size() - data_start_) +
                                     " bytes, the header describes " + std::to_string(data_end));
    }

    Tensor get(const std::string& name) const {
        const std::string entry = entry_of(name);
        Tensor t;
        t.dtype = string_field(entry, "dtype");
        t.shape = int_list_field(entry, "shape");
        const std::vector<std::uint64_t> offsets = int_list_field(entry, "data_offsets");
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
        for (std::uint64_t k = 0; k < count; ++k) t.values[k] = element(t.dtype, p + k * size);
        return t;
    }

  private:
    // The text of the JSON object that is the value of key `name`.
    std::string entry_of(const std::string& name) const {
        const std::string quoted = "\"" + name + "\"";
        for (std::size_t at = header_.find(quoted); at != std::string::npos; at = header_.find(quoted, at + 1)) {
            std::size_t k = skip_space(at + quoted.size());
            if (k >= header_.size() || header_[k] != ':') continue;
            k = skip_space(k + 1);
            if (k >= header_.size() || header_[k] != '{') continue;
            const std::size_t end = header_.find('}', k);
            if (end == std::string::npos) break;
            return header_.substr(k, end - k + 1);
        }
        throw std::runtime_error("no tensor named " + name);
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

    static std::vector<std::uint64_t> int_list_field(const std::string& entry, const std::string& key) {
        const std::size_t open = value_start(entry, key);
        const std::size_t close = open == std::string::npos ? open : entry.find(']', open);
        if (open == std::string::npos || entry[open] != '[' || close == std::string::npos)
            throw std::runtime_error(key + " is not a list");
        std::vector<std::uint64_t> out;
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

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0]
                  << " CASE.safetensors [--base B] [--variant float32|float16|bfloat16] [--atol A] [--rtol R]\n";
        return 2;
    }
    double base = 10000.0, atol = 1e-12, rtol = 1e-12;
    std::string prefix;
    try {
        for (int k = 2; k < argc; k += 2) {
            const std::string option = argv[k];
            if (k + 1 >= argc) throw std::runtime_error("option " + option + " needs a value");
            const std::string value = argv[k + 1];
            if (option == "--base") base = std::stod(value);
            else if (option == "--atol") atol = std::stod(value);
            else if (option == "--rtol") rtol = std::stod(value);
            else if (option == "--variant") prefix = value + ".";
            else throw std::runtime_error("unknown option " + option);
        }

        const SafetensorsFile file(argv[1]);
        const Tensor positions = file.get(prefix + "inputs.positions");
        const Tensor dim_tensor = file.get("inputs.dim");
        const Tensor expected = file.get(prefix + "outputs.output");
        if (!dim_tensor.shape.empty() || (dim_tensor.dtype != "I64" && dim_tensor.dtype != "I32"))
            throw std::runtime_error("inputs.dim must be an integer scalar");
        const auto dim = static_cast<std::uint64_t>(dim_tensor.values[0]);
        if (dim == 0 || dim % 2) throw std::runtime_error("dim must be positive and even");
        const std::uint64_t half = dim / 2;

        std::vector<std::uint64_t> want_shape = positions.shape;
        want_shape.push_back(half);
        if (expected.shape != want_shape) throw std::runtime_error("expected output has the wrong shape");

        // theta_i = base^(-2i/dim); angle = position * theta_i
        std::vector<double> theta(half);
        for (std::uint64_t i = 0; i < half; ++i) theta[i] = std::pow(base, (-2.0 * i) / dim);

        double max_abs = 0.0;
        std::uint64_t worst = 0, failures = 0;
        for (std::uint64_t p = 0; p < positions.values.size(); ++p) {
            for (std::uint64_t i = 0; i < half; ++i) {
                const std::uint64_t k = p * half + i;
                const double got = positions.values[p] * theta[i];
                const double want = expected.values[k];
                const double err = std::fabs(got - want);
                if (!(err <= atol + rtol * std::fabs(want))) ++failures;  // NaN fails too
                if (err > max_abs || (std::isnan(err) && !std::isnan(max_abs))) {
                    max_abs = err;
                    worst = k;
                }
            }
        }
        std::cout << "compared " << expected.values.size() << " elements of " << prefix << "outputs.output; "
                  << "max abs error " << max_abs << " at flat index " << worst << "; " << failures
                  << " outside atol=" << atol << " rtol=" << rtol << ": " << (failures ? "FAIL" : "PASS") << "\n";
        return failures ? 1 : 0;
    } catch (const std::exception& error) {
        std::cerr << "read_case: " << error.what() << "\n";
        return 2;
    }
}
